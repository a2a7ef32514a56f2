// Package pki is the per-cluster certificate authority: it creates the
// cluster's CAs, issues every component's certificate, and keeps them on disk
// as kubeadm lays them out. `gravity install` and `gravity join` both use it,
// so a node certificate means the same thing however the node came to be.
//
// Keys are ECDSA P-256: every component we run (etcd, Kubernetes, containerd,
// the distribution registry) accepts them, and they are cheap to generate.
// Only the standard library's crypto is used; nothing shells out or dials.
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// clockSkew backdates NotBefore so that a certificate issued on one node is
// already valid on a node whose clock is a little behind.
const clockSkew = 5 * time.Minute

// Usage says which side of a TLS connection a certificate may be used on.
type Usage int

const (
	UsageServer Usage = 1 << iota
	UsageClient
	UsageBoth = UsageServer | UsageClient
)

// String names the usage as it appears in errors.
func (u Usage) String() string {
	switch u {
	case UsageServer:
		return "server"
	case UsageClient:
		return "client"
	case UsageBoth:
		return "server+client"
	}
	return fmt.Sprintf("Usage(%d)", int(u))
}

// extKeyUsages maps a Usage to the certificate extension values.
func (u Usage) extKeyUsages() ([]x509.ExtKeyUsage, error) {
	var out []x509.ExtKeyUsage
	if u&UsageServer != 0 {
		out = append(out, x509.ExtKeyUsageServerAuth)
	}
	if u&UsageClient != 0 {
		out = append(out, x509.ExtKeyUsageClientAuth)
	}
	if len(out) == 0 || u&^UsageBoth != 0 {
		return nil, fmt.Errorf("invalid certificate usage %d: want server, client or both", int(u))
	}
	return out, nil
}

// KeyPair is a certificate and its private key.
type KeyPair struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// CA is a certificate authority: a self-signed CA certificate and its key.
type CA struct {
	KeyPair
}

// Request describes a certificate to issue.
type Request struct {
	CommonName   string
	Organization []string
	DNSNames     []string
	IPs          []net.IP
	Usages       Usage
	Validity     time.Duration
	// Now is the issuing time; zero means time.Now(). Tests pin it.
	Now time.Time
}

// NewCA creates a self-signed CA valid from now for validity.
func NewCA(commonName string, validity time.Duration, now time.Time) (*CA, error) {
	if commonName == "" {
		return nil, errors.New("new CA: empty common name")
	}
	if validity <= 0 {
		return nil, fmt.Errorf("new CA %q: validity must be positive, got %v", commonName, validity)
	}
	if now.IsZero() {
		now = time.Now()
	}
	key, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("new CA %q: %w", commonName, err)
	}
	tmpl, err := baseTemplate(pkix.Name{CommonName: commonName}, now, validity, key.Public())
	if err != nil {
		return nil, fmt.Errorf("new CA %q: %w", commonName, err)
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	// Path length 0: this CA signs leaves only, never another CA.
	tmpl.MaxPathLen = 0
	tmpl.MaxPathLenZero = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	cert, err := sign(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("new CA %q: %w", commonName, err)
	}
	return &CA{KeyPair{Cert: cert, Key: key}}, nil
}

// Issue signs a new key pair for req.
func (ca *CA) Issue(req Request) (*KeyPair, error) {
	key, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("issue %q: %w", req.CommonName, err)
	}
	cert, err := ca.IssueFor(req, key.Public())
	if err != nil {
		return nil, err
	}
	return &KeyPair{Cert: cert, Key: key}, nil
}

// IssueFor signs a certificate for req over a public key whose private key
// stays where it was made (a joining node's certificate requests).
func (ca *CA) IssueFor(req Request, pub crypto.PublicKey) (*x509.Certificate, error) {
	ekus, err := req.check()
	if err != nil {
		return nil, err
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	notAfter := now.Add(req.Validity)
	if notAfter.After(ca.Cert.NotAfter) {
		return nil, fmt.Errorf("issue %q: it would expire %s, after its CA %q (%s)",
			req.CommonName, notAfter.UTC().Format(time.RFC3339), ca.Cert.Subject.CommonName,
			ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	subject := pkix.Name{CommonName: req.CommonName, Organization: req.Organization}
	tmpl, err := baseTemplate(subject, now, req.Validity, pub)
	if err != nil {
		return nil, fmt.Errorf("issue %q: %w", req.CommonName, err)
	}
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = ekus
	tmpl.DNSNames = uniqueStrings(req.DNSNames)
	tmpl.IPAddresses = uniqueIPs(req.IPs)
	tmpl.AuthorityKeyId = ca.Cert.SubjectKeyId
	cert, err := sign(tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue %q: %w", req.CommonName, err)
	}
	return cert, nil
}

// Pool returns a pool holding just this CA, for tls.Config.RootCAs/ClientCAs.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Verify checks that cert chains to this CA for usage at time at (zero: now).
func (ca *CA) Verify(cert *x509.Certificate, usage Usage, at time.Time) error {
	ekus, err := usage.extKeyUsages()
	if err != nil {
		return err
	}
	for _, eku := range ekus {
		opts := x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{eku}}
		if _, err := cert.Verify(opts); err != nil {
			return fmt.Errorf("verify %q against CA %q: %w", cert.Subject.CommonName, ca.Cert.Subject.CommonName, err)
		}
	}
	return nil
}

func (r Request) check() ([]x509.ExtKeyUsage, error) {
	if r.CommonName == "" {
		return nil, errors.New("issue: empty common name")
	}
	if r.Validity <= 0 {
		return nil, fmt.Errorf("issue %q: validity must be positive, got %v", r.CommonName, r.Validity)
	}
	for _, ip := range r.IPs {
		if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
			return nil, fmt.Errorf("issue %q: invalid IP address %v", r.CommonName, ip)
		}
	}
	ekus, err := r.Usages.extKeyUsages()
	if err != nil {
		return nil, fmt.Errorf("issue %q: %w", r.CommonName, err)
	}
	return ekus, nil
}

func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ECDSA P-256 key: %w", err)
	}
	return key, nil
}

// baseTemplate holds what CA and leaf certificates share.
func baseTemplate(subject pkix.Name, now time.Time, validity time.Duration, pub crypto.PublicKey) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    now.Add(-clockSkew).UTC(),
		NotAfter:     now.Add(validity).UTC(),
		SubjectKeyId: ski,
	}, nil
}

func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse signed certificate: %w", err)
	}
	return cert, nil
}

// randomSerial returns a positive 128-bit serial (RFC 5280 allows 20 octets).
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// subjectKeyID is RFC 7093 method 1: the leftmost 160 bits of the SHA-256 of
// the subjectPublicKey bit string.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	sum := sha256.Sum256(spki.PublicKey.Bytes)
	return sum[:20], nil
}

// keyMatches reports whether cert's public key is the public half of key.
func keyMatches(cert *x509.Certificate, key crypto.Signer) bool {
	return publicKeyEqual(key.Public(), cert.PublicKey)
}

// publicKeyEqual compares keys of any type the standard library parses.
func publicKeyEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

func uniqueStrings(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func uniqueIPs(in []net.IP) []net.IP {
	var out []net.IP
	for _, ip := range in {
		dup := false
		for _, o := range out {
			dup = dup || o.Equal(ip)
		}
		if !dup {
			out = append(out, normalizeIP(ip))
		}
	}
	return out
}

// normalizeIP stores IPv4 addresses in 4 bytes so that the SAN round-trips
// equal to what the caller gave, whichever form net.ParseIP returned.
func normalizeIP(ip net.IP) net.IP {
	if v4 := ip.To4(); v4 != nil {
		return v4
	}
	return bytes.Clone(ip)
}
