package node

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/opengravity/gravity/internal/pki"
)

// TestRenewCertificatesReissues: with the runtime stopped, renewing gives
// every certificate of a master a new key and serial from the same CAs,
// valid from now; the CA set, the encryption keys included, is unchanged.
func TestRenewCertificatesReissues(t *testing.T) {
	n := bootstrapped(t)
	p := n.Paths()
	before, err := pki.LoadKeyPair(p.PKI, pki.APIServer)
	if err != nil {
		t.Fatal(err)
	}
	csBefore, err := pki.LoadCASet(p.PKI)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // certificate times have whole seconds
	var out bytes.Buffer
	if err := RenewCertificates(context.Background(), "/", n, &out); err != nil {
		t.Fatal(err)
	}
	after, err := pki.LoadKeyPair(p.PKI, pki.APIServer)
	if err != nil {
		t.Fatal(err)
	}
	if after.Cert.SerialNumber.Cmp(before.Cert.SerialNumber) == 0 || !after.Cert.NotAfter.After(before.Cert.NotAfter) {
		t.Errorf("apiserver certificate not renewed: serial %v→%v, NotAfter %v→%v", before.Cert.SerialNumber,
			after.Cert.SerialNumber, before.Cert.NotAfter, after.Cert.NotAfter)
	}
	if err := after.Cert.CheckSignatureFrom(csBefore.Cluster.Cert); err != nil {
		t.Errorf("renewed certificate is not the cluster CA's: %v", err)
	}
	csAfter, err := pki.LoadCASet(p.PKI)
	if err != nil {
		t.Fatal(err)
	}
	if !csAfter.Cluster.Cert.Equal(csBefore.Cluster.Cert) || !bytes.Equal(csAfter.EncryptionConfig, csBefore.EncryptionConfig) {
		t.Error("renewing changed the CA set")
	}
	if !strings.Contains(out.String(), "not running") {
		t.Errorf("output %q", out.String())
	}
}

func TestRenewCertificatesRefusesWorker(t *testing.T) {
	err := RenewCertificates(context.Background(), "/", testWorker(t), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "no CA keys") {
		t.Fatalf("err = %v", err)
	}
}
