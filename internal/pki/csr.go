package pki

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
)

// A joining node makes its own keys and sends only certificate requests;
// the cluster decides every certificate's subject, names and usages from
// what it knows of the node (nodeProfiles), never from the request, whose
// signature proves only that the sender holds the key.

// NodeCertNames are the key pairs node n needs, in a stable order.
func NodeCertNames(n Node) ([]string, error) {
	n, err := n.withDefaults()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range nodeProfiles(n) {
		out = append(out, p.name)
	}
	return out, nil
}

// PendingKeys are a node's fresh private keys by key pair name, with the
// certificate request of each, kept until the certificates come back.
type PendingKeys struct {
	keys map[string]*KeyPair // Cert nil until Complete
	CSRs map[string][]byte   // PEM
}

// NewNodeRequests makes a key and a certificate request for every name.
func NewNodeRequests(names []string) (*PendingKeys, error) {
	pk := &PendingKeys{keys: map[string]*KeyPair{}, CSRs: map[string][]byte{}}
	for _, name := range names {
		if err := checkName(name); err != nil {
			return nil, err
		}
		key, err := newKey()
		if err != nil {
			return nil, err
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		if err != nil {
			return nil, fmt.Errorf("certificate request %s: %w", name, err)
		}
		pk.keys[name] = &KeyPair{Key: key}
		pk.CSRs[name] = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	}
	return pk, nil
}

// Complete pairs each key with its certificate (PEM), checking that every
// certificate is for the key made for it and that none is missing.
func (pk *PendingKeys) Complete(certs map[string][]byte) (map[string]*KeyPair, error) {
	out := map[string]*KeyPair{}
	for name, kp := range pk.keys {
		data, ok := certs[name]
		if !ok {
			return nil, fmt.Errorf("no certificate came back for %s", name)
		}
		cert, err := ParseCertificatePEM(data)
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", name, err)
		}
		if !keyMatches(cert, kp.Key) {
			return nil, fmt.Errorf("certificate %s is not for the key made for it", name)
		}
		out[name] = &KeyPair{Cert: cert, Key: kp.Key}
	}
	return out, nil
}

// SignNodeRequests issues node n's certificates from cs over the public
// keys of its requests (PEM, by key pair name): exactly the names n needs,
// each request's signature checked. The result is PEM by name.
func SignNodeRequests(cs *CASet, n Node, csrs map[string][]byte) (map[string][]byte, error) {
	if cs == nil || cs.Cluster == nil || cs.Etcd == nil || cs.FrontProxy == nil {
		return nil, errors.New("sign node requests: incomplete CA set")
	}
	n, err := n.withDefaults()
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	out := map[string][]byte{}
	for _, p := range nodeProfiles(n) {
		want[p.name] = true
		data, ok := csrs[p.name]
		if !ok {
			return nil, fmt.Errorf("node %s: no certificate request for %s", n.Name, p.name)
		}
		csr, err := parseCSR(data)
		if err != nil {
			return nil, fmt.Errorf("node %s: %s: %w", n.Name, p.name, err)
		}
		p.req.Validity, p.req.Now = n.Validity, n.Now
		cert, err := p.ca(cs).IssueFor(p.req, csr.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("node %s: %s: %w", n.Name, p.name, err)
		}
		out[p.name] = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	}
	var extra []string
	for name := range csrs {
		if !want[name] {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return nil, fmt.Errorf("node %s: certificates it does not need were asked for: %v", n.Name, extra)
	}
	return out, nil
}

func parseCSR(data []byte) (*x509.CertificateRequest, error) {
	der, err := singleBlock(data, "CERTIFICATE REQUEST")
	if err != nil {
		return nil, err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	return csr, nil
}
