package pki

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// RenewWithin is how long before a certificate expires gravity status
// warns about it: time to renew on every node without haste.
const RenewWithin = 30 * 24 * time.Hour

// Expiry is when one certificate of a node expires.
type Expiry struct {
	// Name is the certificate's path under the PKI directory, without
	// .crt ("apiserver", "etcd/server"), or kubeconfig/<name>.conf for one
	// embedded in a kubeconfig.
	Name     string    `json:"name"`
	Subject  string    `json:"subject"`
	NotAfter time.Time `json:"notAfter"`
	IsCA     bool      `json:"isCA,omitempty"`
}

// Expiries lists every certificate under dir (a node's PKI directory):
// the .crt files and the client certificates embedded in the kubeconfigs
// below it, soonest to expire first.
func Expiries(dir string) ([]Expiry, error) {
	var out []Expiry
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		var certPEM []byte
		switch {
		case strings.HasSuffix(path, CertExt):
			if certPEM, err = os.ReadFile(path); err != nil {
				return err
			}
			rel = strings.TrimSuffix(rel, CertExt)
		case strings.HasSuffix(path, ".conf"):
			cfg, err := clientcmd.LoadFromFile(path)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			for _, a := range cfg.AuthInfos {
				certPEM = append(certPEM, a.ClientCertificateData...)
			}
		default:
			return nil
		}
		block, _ := pem.Decode(certPEM)
		if block == nil {
			return fmt.Errorf("%s: no PEM certificate", path)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, Expiry{Name: filepath.ToSlash(rel), Subject: cert.Subject.CommonName, NotAfter: cert.NotAfter, IsCA: cert.IsCA})
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no certificates at %s: %w", dir, err)
	}
	slices.SortStableFunc(out, func(a, b Expiry) int { return a.NotAfter.Compare(b.NotAfter) })
	return out, err
}

// Expiring is those of es that expire before now+within (or have).
func Expiring(es []Expiry, now time.Time, within time.Duration) []Expiry {
	var out []Expiry
	for _, e := range es {
		if e.NotAfter.Before(now.Add(within)) {
			out = append(out, e)
		}
	}
	return out
}

// Fingerprint is a certificate's SHA-256 fingerprint as browsers show it
// ("SHA256:AB:CD:…").
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return "SHA256:" + strings.Join(parts, ":")
}
