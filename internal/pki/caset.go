package pki

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Names of the CA files under a PKI directory, as kubeadm lays them out.
const (
	ClusterCAName    = "ca"
	EtcdCAName       = "etcd/ca"
	FrontProxyCAName = "front-proxy-ca"
	// ServiceAccountKeyName is sa.key and sa.pub: the key pair kube-apiserver
	// signs service account tokens with (a key pair, not a certificate).
	ServiceAccountKeyName = "sa"
	PublicKeyExt          = ".pub"
)

// CASet is everything a cluster's PKI is rooted in. Kubernetes trusts
// separate CAs for etcd and for the aggregation layer's front proxy, so a
// client certificate from one can never authenticate to the other.
type CASet struct {
	Cluster    *CA
	Etcd       *CA
	FrontProxy *CA
	// ServiceAccount signs and verifies service account tokens (ES256).
	ServiceAccount crypto.Signer
	// EncryptionConfig is kube-apiserver's EncryptionConfiguration with
	// the keys Secrets are encrypted with at rest (EncryptionConfigName).
	EncryptionConfig []byte
}

// NewCASet creates fresh CAs for the cluster named clusterName (it goes
// into the CAs' common names) and a service account key.
func NewCASet(clusterName string, validity time.Duration, now time.Time) (*CASet, error) {
	if clusterName == "" {
		return nil, errors.New("new CA set: empty cluster name")
	}
	cs := &CASet{}
	for _, c := range []struct {
		dst **CA
		cn  string
	}{
		{&cs.Cluster, clusterName},
		{&cs.Etcd, clusterName + "-etcd-ca"},
		{&cs.FrontProxy, clusterName + "-front-proxy-ca"},
	} {
		ca, err := NewCA(c.cn, validity, now)
		if err != nil {
			return nil, err
		}
		*c.dst = ca
	}
	key, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("service account key: %w", err)
	}
	cs.ServiceAccount = key
	if cs.EncryptionConfig, err = NewEncryptionConfig(); err != nil {
		return nil, err
	}
	return cs, nil
}

func (cs *CASet) cas() map[string]*CA {
	return map[string]*CA{ClusterCAName: cs.Cluster, EtcdCAName: cs.Etcd, FrontProxyCAName: cs.FrontProxy}
}

// caFiles lists every file Save writes, relative to the directory.
func caFiles() []string {
	var out []string
	for _, n := range []string{ClusterCAName, EtcdCAName, FrontProxyCAName} {
		out = append(out, n+CertExt, n+KeyExt)
	}
	return append(out, ServiceAccountKeyName+KeyExt, ServiceAccountKeyName+PublicKeyExt, EncryptionConfigName)
}

// Save writes the set under dir. It refuses when any CA file already exists
// unless overwrite is set: replacing a CA silently would orphan every
// certificate the old one issued.
func (cs *CASet) Save(dir string, overwrite bool) error {
	if cs.Cluster == nil || cs.Etcd == nil || cs.FrontProxy == nil || cs.ServiceAccount == nil {
		return errors.New("save CA set: incomplete set")
	}
	if err := CheckEncryptionConfig(cs.EncryptionConfig); err != nil {
		return fmt.Errorf("save CA set: %w", err)
	}
	if !overwrite {
		if err := refuseExisting(dir); err != nil {
			return err
		}
	}
	if err := ensureDir(dir); err != nil {
		return err
	}
	for _, name := range []string{ClusterCAName, EtcdCAName, FrontProxyCAName} {
		if err := writePair(dir, name, &cs.cas()[name].KeyPair, overwrite); err != nil {
			return fmt.Errorf("save CA set: %w", err)
		}
	}
	if err := cs.saveServiceAccount(dir, overwrite); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, EncryptionConfigName), cs.EncryptionConfig, KeyMode, overwrite); err != nil {
		return fmt.Errorf("save CA set: %w", err)
	}
	return nil
}

func refuseExisting(dir string) error {
	for _, f := range caFiles() {
		p := filepath.Join(dir, filepath.FromSlash(f))
		_, err := os.Lstat(p)
		if err == nil {
			return fmt.Errorf("save CA set: %s already exists; refusing to replace a cluster CA: %w", p, fs.ErrExist)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("save CA set: %w", err)
		}
	}
	return nil
}

func (cs *CASet) saveServiceAccount(dir string, overwrite bool) error {
	keyPEM, err := marshalPrivateKey(cs.ServiceAccount)
	if err != nil {
		return fmt.Errorf("save service account key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(cs.ServiceAccount.Public())
	if err != nil {
		return fmt.Errorf("save service account key: %w", err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: pemPublicKey, Bytes: pubDER})
	base := filepath.Join(dir, ServiceAccountKeyName)
	if err := writeFileAtomic(base+KeyExt, keyPEM, KeyMode, overwrite); err != nil {
		return fmt.Errorf("save service account key: %w", err)
	}
	if err := writeFileAtomic(base+PublicKeyExt, pubPEM, CertMode, overwrite); err != nil {
		return fmt.Errorf("save service account key: %w", err)
	}
	return nil
}

// LoadCASet reads a set written by Save and validates it: each certificate
// matches its key and is a CA that may sign certificates; sa.pub is sa.key's.
func LoadCASet(dir string) (*CASet, error) {
	cs := &CASet{}
	for _, c := range []struct {
		name string
		dst  **CA
	}{{ClusterCAName, &cs.Cluster}, {EtcdCAName, &cs.Etcd}, {FrontProxyCAName, &cs.FrontProxy}} {
		ca, err := LoadCA(dir, c.name)
		if err != nil {
			return nil, err
		}
		*c.dst = ca
	}
	key, err := loadServiceAccount(dir)
	if err != nil {
		return nil, err
	}
	cs.ServiceAccount = key
	enc, err := os.ReadFile(filepath.Join(dir, EncryptionConfigName))
	if err != nil {
		return nil, fmt.Errorf("load CA set: %w", err)
	}
	if err := CheckEncryptionConfig(enc); err != nil {
		return nil, fmt.Errorf("load CA set: %w", err)
	}
	cs.EncryptionConfig = enc
	return cs, nil
}

// LoadCA reads dir/name.crt and dir/name.key and checks that they form a CA.
func LoadCA(dir, name string) (*CA, error) {
	kp, err := LoadKeyPair(dir, name)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	if err := checkCA(kp.Cert); err != nil {
		return nil, fmt.Errorf("load CA: %s: %w", filepath.Join(dir, filepath.FromSlash(name)+CertExt), err)
	}
	return &CA{*kp}, nil
}

func checkCA(cert *x509.Certificate) error {
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return fmt.Errorf("certificate %q is not a CA", cert.Subject.CommonName)
	}
	if cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("CA %q may not sign certificates (no certSign key usage)", cert.Subject.CommonName)
	}
	return nil
}

func loadServiceAccount(dir string) (crypto.Signer, error) {
	keyPath := filepath.Join(dir, ServiceAccountKeyName+KeyExt)
	pubPath := filepath.Join(dir, ServiceAccountKeyName+PublicKeyExt)
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("load service account key: %w", err)
	}
	key, err := ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	pubPEM, err := os.ReadFile(pubPath)
	if err != nil {
		return nil, fmt.Errorf("load service account key: %w", err)
	}
	pub, err := ParsePublicKeyPEM(pubPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pubPath, err)
	}
	if !publicKeyEqual(key.Public(), pub) {
		return nil, fmt.Errorf("%s does not match %s", pubPath, keyPath)
	}
	return key, nil
}

// ReadFiles reads the set's files under dir (what Save writes), by name
// relative to dir: a master hands them to a master that joins.
func ReadFiles(dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, f := range caFiles() {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			return nil, fmt.Errorf("read CA set: %w", err)
		}
		out[f] = data
	}
	return out, nil
}

// ParseFiles makes the set from files as ReadFiles returns them, in
// memory: nothing is written anywhere.
func ParseFiles(files map[string][]byte) (*CASet, error) {
	for _, f := range caFiles() {
		if _, ok := files[f]; !ok {
			return nil, fmt.Errorf("CA set: %s is missing", f)
		}
	}
	cs := &CASet{}
	for _, c := range []struct {
		name string
		dst  **CA
	}{{ClusterCAName, &cs.Cluster}, {EtcdCAName, &cs.Etcd}, {FrontProxyCAName, &cs.FrontProxy}} {
		kp, err := ParseKeyPair(files[c.name+CertExt], files[c.name+KeyExt])
		if err != nil {
			return nil, fmt.Errorf("CA set: %s: %w", c.name, err)
		}
		if err := checkCA(kp.Cert); err != nil {
			return nil, fmt.Errorf("CA set: %s: %w", c.name, err)
		}
		*c.dst = &CA{*kp}
	}
	key, err := ParsePrivateKeyPEM(files[ServiceAccountKeyName+KeyExt])
	if err != nil {
		return nil, fmt.Errorf("CA set: service account key: %w", err)
	}
	cs.ServiceAccount = key
	if err := CheckEncryptionConfig(files[EncryptionConfigName]); err != nil {
		return nil, fmt.Errorf("CA set: %w", err)
	}
	cs.EncryptionConfig = files[EncryptionConfigName]
	return cs, nil
}

// WriteFiles checks a set read by ReadFiles (ParseFiles) and saves it
// under dir, straight where it is used: a damaged or partial set is an
// error before anything is written.
func WriteFiles(dir string, files map[string][]byte) (*CASet, error) {
	for name := range files {
		if !slices.Contains(caFiles(), name) {
			return nil, fmt.Errorf("write CA set: unexpected file %q", name)
		}
	}
	cs, err := ParseFiles(files)
	if err != nil {
		return nil, err
	}
	if err := cs.Save(dir, true); err != nil {
		return nil, err
	}
	return cs, nil
}
