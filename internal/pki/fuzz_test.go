package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"maps"
	"net"
	"testing"
	"time"
)

// FuzzLoadPEM feeds the key pair loader arbitrary certificate and key files.
// It must never panic, and whatever it accepts must be a matching pair that
// survives a write and a re-read unchanged.
func FuzzLoadPEM(f *testing.F) {
	ca, err := NewCA("fuzz", time.Hour, testNow)
	if err != nil {
		f.Fatal(err)
	}
	leaf, err := ca.Issue(Request{CommonName: "leaf", DNSNames: []string{"localhost"}, Usages: UsageBoth, Validity: time.Minute, Now: testNow})
	if err != nil {
		f.Fatal(err)
	}
	caKey, leafKey := mustKeyPEMF(f, &ca.KeyPair), mustKeyPEMF(f, leaf)
	ecKey, err := x509.MarshalECPrivateKey(ca.Key.(*ecdsa.PrivateKey))
	if err != nil {
		f.Fatal(err)
	}
	sec1 := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecKey})
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		f.Fatal(err)
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	p384PEM, err := marshalPrivateKey(p384)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][2][]byte{
		{ca.CertPEM(), caKey},
		{leaf.CertPEM(), leafKey},
		{ca.CertPEM(), sec1},
		{ca.CertPEM(), leafKey},
		{leaf.CertPEM(), pkcs1},
		{leaf.CertPEM(), p384PEM},
		{append(ca.CertPEM(), leaf.CertPEM()...), caKey},
		{ca.CertPEM()[:len(ca.CertPEM())/2], caKey[:len(caKey)/2]},
		{caKey, ca.CertPEM()},
		{[]byte("-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n"), []byte("-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n")},
		{nil, nil},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		kp, err := ParseKeyPair(certPEM, keyPEM)
		if err != nil {
			if kp != nil {
				t.Fatal("a pair returned with an error")
			}
			return
		}
		if !keyMatches(kp.Cert, kp.Key) {
			t.Fatal("accepted a key that does not match its certificate")
		}
		keyOut, err := kp.KeyPEM()
		if err != nil {
			t.Fatalf("accepted a key it cannot write back: %v", err)
		}
		again, err := ParseKeyPair(kp.CertPEM(), keyOut)
		if err != nil {
			t.Fatalf("re-reading what was accepted: %v", err)
		}
		if !bytes.Equal(again.Cert.Raw, kp.Cert.Raw) || !publicKeyEqual(again.Key.Public(), kp.Key.Public()) {
			t.Fatal("the pair changed on a write and re-read")
		}
	})
}

func mustKeyPEMF(f *testing.F, kp *KeyPair) []byte {
	b, err := kp.KeyPEM()
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzSignNodeRequests: whatever a joining node sends as certificate
// requests is refused or signed for the node's own names, never a panic.
func FuzzSignNodeRequests(f *testing.F) {
	cs, err := NewCASet("c", DefaultCAValidity, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	node := Node{Name: "10.0.0.7", IP: net.ParseIP("10.0.0.7")}
	names, _ := NodeCertNames(node)
	keys, err := NewNodeRequests(names)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(keys.CSRs[KubeProxy])
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		csrs := maps.Clone(keys.CSRs)
		csrs[KubeProxy] = data
		certs, err := SignNodeRequests(cs, node, csrs)
		if err != nil {
			return
		}
		c, err := ParseCertificatePEM(certs[KubeProxy])
		if err != nil || c.Subject.CommonName != "system:kube-proxy" {
			t.Fatalf("signed %v, %v", c, err)
		}
	})
}
