// Package tsh is the client side of access with short-lived certificates:
// logging in to a cluster's proxy, keeping the certificates under ~/.tsh,
// the kubeconfig context that reaches the cluster through the Kubernetes
// proxy, listing nodes, sessions on nodes through the SSH proxy, and
// replaying recorded sessions. The `tsh` command (internal/cli/tsh) turns
// flags into calls here.
//
// Contract: the private key is made here and never leaves the machine;
// what a login keeps is written whole or not at all (0600, under a 0700
// directory); the proxy is verified by the cluster CA (or the system's
// roots) unless the user says --insecure for the first contact, and SSH
// hosts always by the cluster's hosts CA.
package tsh

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opengravity/gravity/internal/atomicfile"
	"github.com/opengravity/gravity/internal/pki"
)

// Files of a profile, under Dir/keys/<proxy host>/.
const (
	profileFile = "profile.json"
	keyFile     = "key"
	sshCertFile = "key-cert.pub"
	tlsCertFile = "tls.crt"
	caFile      = "ca.crt"
	currentFile = "current-profile"
)

// Profile is what a login keeps of one cluster.
type Profile struct {
	// Proxy is the address logged in to (host:port of the web API).
	Proxy   string `json:"proxy"`
	User    string `json:"user"`
	Cluster string `json:"cluster"`
	// Proxies are every master's address, tried in turn.
	Proxies  []string  `json:"proxies"`
	SSHPort  int       `json:"sshPort"`
	KubePort int       `json:"kubePort"`
	WebPort  int       `json:"webPort"`
	Session  string    `json:"session"`
	Logins   []string  `json:"logins"`
	Roles    []string  `json:"roles,omitempty"`
	HostCA   string    `json:"hostCA"`
	Expires  time.Time `json:"expires"`
	// Context is the kubeconfig context login wrote.
	Context string `json:"kubeContext"`

	dir string
}

// Home is tsh's directory: $TSH_HOME, else ~/.tsh.
func Home() (string, error) {
	if d := os.Getenv("TSH_HOME"); d != "" {
		return d, nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(h, ".tsh"), nil
}

// ProxyHost is the host part of a proxy address.
func ProxyHost(proxy string) string {
	h, _, err := net.SplitHostPort(proxy)
	if err != nil {
		return proxy
	}
	return h
}

func profileDir(home, proxy string) string {
	return filepath.Join(home, "keys", strings.ReplaceAll(ProxyHost(proxy), string(filepath.Separator), "_"))
}

// Dir is where the profile's files are.
func (p *Profile) Dir() string { return p.dir }

// KeyPath and TLSCertPath are the files the kubeconfig names.
func (p *Profile) KeyPath() string     { return filepath.Join(p.dir, keyFile) }
func (p *Profile) TLSCertPath() string { return filepath.Join(p.dir, tlsCertFile) }

// Expired says whether the certificates have run out.
func (p *Profile) Expired(now time.Time) bool { return !now.Before(p.Expires) }

// save writes a login's files: each whole, 0600, the profile last so that
// a profile on disk always has its certificates.
func save(home string, p *Profile, key crypto.Signer, sshCert, tlsCert, clusterCA []byte) error {
	p.dir = profileDir(home, p.Proxy)
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(home, 0o700); err != nil {
		return err
	}
	keyPEM, err := pki.MarshalPrivateKeyPEM(key)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{keyFile, keyPEM}, {sshCertFile, sshCert}, {tlsCertFile, tlsCert}, {caFile, clusterCA}, {profileFile, data}} {
		if err := atomicfile.WriteFile(filepath.Join(p.dir, f.name), f.data, 0o600); err != nil {
			return fmt.Errorf("saving %s: %w", f.name, err)
		}
	}
	return atomicfile.WriteFile(filepath.Join(home, currentFile), []byte(ProxyHost(p.Proxy)+"\n"), 0o600)
}

// ErrNotLoggedIn is a command that needs a login before it.
var ErrNotLoggedIn = errors.New("not logged in: run tsh login --proxy=<host:port> --user=<name>")

// Current is the profile of the last login.
func Current(home string) (*Profile, error) {
	data, err := os.ReadFile(filepath.Join(home, currentFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotLoggedIn
	}
	if err != nil {
		return nil, err
	}
	return Load(home, strings.TrimSpace(string(data)))
}

// Load reads the profile of proxy.
func Load(home, proxy string) (*Profile, error) {
	dir := profileDir(home, proxy)
	data, err := os.ReadFile(filepath.Join(dir, profileFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotLoggedIn
	}
	if err != nil {
		return nil, err
	}
	var p Profile
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("profile %s: %w", filepath.Join(dir, profileFile), err)
	}
	p.dir = dir
	return &p, nil
}

// SSHSigner is the key with its SSH certificate.
func (p *Profile) SSHSigner() (ssh.Signer, error) {
	keyPEM, err := os.ReadFile(p.KeyPath())
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.KeyPath(), err)
	}
	certData, err := os.ReadFile(filepath.Join(p.dir, sshCertFile))
	if err != nil {
		return nil, err
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(certData)
	if err != nil {
		return nil, fmt.Errorf("SSH certificate: %w", err)
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, errors.New("SSH certificate: not a certificate")
	}
	return ssh.NewCertSigner(cert, signer)
}

// ClusterCA is the CA the proxies' certificates chain to.
func (p *Profile) ClusterCA() ([]byte, error) { return os.ReadFile(filepath.Join(p.dir, caFile)) }

// TLSConfig verifies the proxy by the cluster CA.
func (p *Profile) TLSConfig() (*tls.Config, error) {
	ca, err := p.ClusterCA()
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("the saved cluster CA is not a certificate")
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// proxyAddrs are the addresses of the proxies' port, the one logged in to
// first.
func (p *Profile) proxyAddrs(port int) []string {
	first := ProxyHost(p.Proxy)
	out := []string{net.JoinHostPort(first, strconv.Itoa(port))}
	for _, h := range p.Proxies {
		if h != first {
			out = append(out, net.JoinHostPort(h, strconv.Itoa(port)))
		}
	}
	return out
}

// remove deletes the profile's files.
func remove(home string, p *Profile) error {
	if err := os.RemoveAll(p.dir); err != nil {
		return err
	}
	cur, err := os.ReadFile(filepath.Join(home, currentFile))
	if err == nil && strings.TrimSpace(string(cur)) == ProxyHost(p.Proxy) {
		return os.Remove(filepath.Join(home, currentFile))
	}
	return nil
}
