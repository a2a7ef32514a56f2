package pki

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/opengravity/gravity/internal/atomicfile"
)

// File modes: private keys are readable by their owner only, and so are
// certificates: nothing public needs them, only root's components read
// them, and the CIS benchmark asks for 600 (1.1.20, 4.1.7). The
// directories that hold them are their owner's alone too.
const (
	KeyMode  fs.FileMode = 0o600
	CertMode fs.FileMode = 0o600
	DirMode  fs.FileMode = 0o700
)

// File name suffixes, as kubeadm writes them.
const (
	CertExt = ".crt"
	KeyExt  = ".key"
)

const (
	pemCertificate = "CERTIFICATE"
	pemPrivateKey  = "PRIVATE KEY"
	pemPublicKey   = "PUBLIC KEY"
)

// CertPEM encodes the certificate.
func (kp *KeyPair) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: kp.Cert.Raw})
}

// KeyPEM encodes the private key as PKCS #8, which etcd, Kubernetes,
// containerd and the registry all read.
func (kp *KeyPair) KeyPEM() ([]byte, error) {
	return marshalPrivateKey(kp.Key)
}

// TLSCertificate returns the pair for a tls.Config.
func (kp *KeyPair) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{kp.Cert.Raw}, PrivateKey: kp.Key, Leaf: kp.Cert}
}

// MarshalPrivateKeyPEM is key as PKCS #8 PEM, as every key file here.
func MarshalPrivateKeyPEM(key crypto.Signer) ([]byte, error) { return marshalPrivateKey(key) }

func marshalPrivateKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// ParseKeyPair decodes a PEM certificate and its PEM private key and checks
// that they belong together.
func ParseKeyPair(certPEM, keyPEM []byte) (*KeyPair, error) {
	cert, err := ParseCertificatePEM(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	if !keyMatches(cert, key) {
		return nil, fmt.Errorf("private key does not match certificate %q", cert.Subject.CommonName)
	}
	return &KeyPair{Cert: cert, Key: key}, nil
}

// ParseCertificatePEM decodes exactly one PEM certificate.
func ParseCertificatePEM(data []byte) (*x509.Certificate, error) {
	der, err := singleBlock(data, pemCertificate)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, nil
}

// ParsePrivateKeyPEM decodes one private key: PKCS #8, or the SEC 1 and
// PKCS #1 forms older tools wrote.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM private key found")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("unexpected data after the PEM private key")
	}
	var key any
	var err error
	switch block.Type {
	case pemPrivateKey:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", strings.ToLower(block.Type), err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign", key)
	}
	return signer, nil
}

// ParsePublicKeyPEM decodes one PKIX public key.
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	der, err := singleBlock(data, pemPublicKey)
	if err != nil {
		return nil, err
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	return pub, nil
}

// singleBlock refuses bundles and trailing data: a file we wrote holds one
// block, so anything else means it was damaged or replaced.
func singleBlock(data []byte, typ string) ([]byte, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("no PEM %s found", strings.ToLower(typ))
	}
	if block.Type != typ {
		return nil, fmt.Errorf("PEM block is %q, want %q", block.Type, typ)
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, fmt.Errorf("unexpected data after the PEM %s", strings.ToLower(typ))
	}
	return block.Bytes, nil
}

// LoadKeyPair reads dir/name.crt and dir/name.key. Errors name the file.
func LoadKeyPair(dir, name string) (*KeyPair, error) {
	certPath := filepath.Join(dir, filepath.FromSlash(name)+CertExt)
	keyPath := filepath.Join(dir, filepath.FromSlash(name)+KeyExt)
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	cert, err := ParseCertificatePEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	key, err := ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	if !keyMatches(cert, key) {
		return nil, fmt.Errorf("%s does not match the certificate in %s", keyPath, certPath)
	}
	return &KeyPair{Cert: cert, Key: key}, nil
}

// WriteDir writes every pair as dir/<name>.crt (0644) and dir/<name>.key
// (0600); a name may hold a slash ("etcd/server"). Each file is replaced
// atomically, keys first, so a reader sees either the old or the new file.
func WriteDir(dir string, files map[string]*KeyPair) error {
	names := make([]string, 0, len(files))
	for name := range files {
		if err := checkName(name); err != nil {
			return err
		}
		names = append(names, name)
	}
	sort.Strings(names)
	if err := ensureDir(dir); err != nil {
		return err
	}
	for _, name := range names {
		if err := writePair(dir, name, files[name], true); err != nil {
			return err
		}
	}
	return nil
}

func writePair(dir, name string, kp *KeyPair, overwrite bool) error {
	if kp == nil || kp.Cert == nil || kp.Key == nil {
		return fmt.Errorf("write %s: incomplete key pair", name)
	}
	keyPEM, err := kp.KeyPEM()
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	base := filepath.Join(dir, filepath.FromSlash(name))
	if err := writeFileAtomic(base+KeyExt, keyPEM, KeyMode, overwrite); err != nil {
		return err
	}
	return writeFileAtomic(base+CertExt, kp.CertPEM(), CertMode, overwrite)
}

// checkName keeps names inside the directory.
func checkName(name string) error {
	if name == "" || !filepath.IsLocal(filepath.FromSlash(name)) || strings.Contains(name, `\`) {
		return fmt.Errorf("invalid key pair name %q", name)
	}
	return nil
}

// ensureDir creates dir and its missing parents with DirMode and tightens dir
// itself: the PKI directory is ours, whoever made it.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, DirMode); err != nil {
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	return nil
}

// writeFileAtomic replaces path, or without overwrite creates it and
// fails if it appeared meanwhile, so a CA is never clobbered by a race.
// Either way the write is synced with its directory: a node that loses
// power right after install must not come back with an empty key file.
func writeFileAtomic(path string, data []byte, mode fs.FileMode, overwrite bool) error {
	if err := ensureDir(filepath.Dir(path)); err != nil {
		return err
	}
	if overwrite {
		return atomicfile.WriteFile(path, data, mode)
	}
	return atomicfile.CreateFile(path, data, mode)
}

// ServerTLS is a mutual TLS server configuration from PEM files: the
// server's key pair, and the CA every client certificate must chain to.
func ServerTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	pair, pool, err := loadTLSFiles(certFile, keyFile, clientCAFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}, nil
}

// ClientTLS is a mutual TLS client configuration from PEM files: the
// client's key pair, and the CA the server's certificate must chain to
// (never the system roots).
func ClientTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	pair, pool, err := loadTLSFiles(certFile, keyFile, caFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

func loadTLSFiles(certFile, keyFile, caFile string) (tls.Certificate, *x509.CertPool, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("key pair %s: %w", certFile, err)
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return tls.Certificate{}, nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return pair, pool, nil
}
