package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/opengravity/gravity/internal/atomicfile"
	"github.com/opengravity/gravity/internal/pki"
)

// kubeconfigUsers maps each kubeconfig to the key pair and user it carries.
var kubeconfigUsers = []struct {
	name, pair, user string
	masterOnly       bool
}{
	{KubeconfigAdmin, pki.Admin, "admin", true},
	{KubeconfigControllerManager, pki.ControllerManager, "system:kube-controller-manager", true},
	{KubeconfigScheduler, pki.Scheduler, "system:kube-scheduler", true},
	{KubeconfigKubelet, pki.KubeletClient, "system:node:", false},
	{KubeconfigKubeProxy, pki.KubeProxy, "system:kube-proxy", false},
	{KubeconfigCSRApprover, pki.CSRApprover, pki.CSRApproverUser, true},
	{KubeconfigClusterService, pki.ClusterServiceClient, pki.ClusterServiceUser, true},
}

// Kubeconfigs are the kubeconfigs of node n's components keyed by their
// path (Paths.Kubeconfig), with the client certificates of certs (as
// pki.NodeCerts returns them) embedded. They hold private keys: write them
// with pki.KeyMode. The master components reach their own API server, the
// rest n.APIServer().
func Kubeconfigs(n Node, ca *x509.Certificate, certs map[string]*pki.KeyPair) (map[string][]byte, error) {
	n, err := n.WithDefaults()
	if err != nil {
		return nil, err
	}
	if ca == nil {
		return nil, errors.New("kubeconfigs: no cluster CA certificate")
	}
	p := n.Paths()
	out := map[string][]byte{}
	for _, k := range kubeconfigUsers {
		if k.masterOnly && !n.IsMaster() {
			continue
		}
		kp := certs[k.pair]
		if kp == nil {
			return nil, fmt.Errorf("kubeconfig %s: no %q key pair", k.name, k.pair)
		}
		user := k.user
		if k.pair == pki.KubeletClient {
			user += n.Name
		}
		data, err := pki.Kubeconfig(n.APIServer(), ca, kp, user)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", k.name, err)
		}
		out[p.Kubeconfig(k.name)] = data
	}
	return out, nil
}

// generator makes one file of a node; masterOnly ones are skipped on
// workers.
type generator struct {
	path       func(Paths) string
	gen        func(Node) ([]byte, error)
	masterOnly bool
}

var generators = []generator{
	{func(p Paths) string { return p.ContainerdConfig }, ContainerdConfig, false},
	{func(p Paths) string { return filepath.Join(p.ContainerdHosts, RegistryHostsPath) }, RegistryHosts, false},
	{func(p Paths) string { return filepath.Join(p.ContainerdHosts, DefaultHostsPath) }, DefaultHosts, false},
	{Paths.CNIConfPath, CNIConfig, false},
	{func(p Paths) string { return p.KubeletConfig }, KubeletConfig, false},
	{func(p Paths) string { return p.ResolvConf }, ResolvConf, false},
	{func(p Paths) string { return p.KubeProxyConfig }, KubeProxyConfig, false},
	{func(p Paths) string { return p.AdmissionConfig }, AdmissionConfig, true},
	{func(p Paths) string { return p.AuditPolicy }, AuditPolicy, true},
	{func(p Paths) string { return p.RegistryConfig }, RegistryConfig, true},
	{func(p Paths) string { return p.Corefile }, Corefile, true},
}

// FileMode is the mode Files are written with: only root, which runs
// every component, reads them (the CIS benchmark's file checks).
const FileMode = 0o600

// Files is every non-secret file node n's components read, keyed by its
// absolute path. Certificates, keys and kubeconfigs are not among them
// (pki.WriteDir, Kubeconfigs).
func Files(n Node) (map[string][]byte, error) {
	n, err := n.WithDefaults()
	if err != nil {
		return nil, err
	}
	p := n.Paths()
	out := map[string][]byte{}
	for _, g := range generators {
		if g.masterOnly && !n.IsMaster() {
			continue
		}
		data, err := g.gen(n)
		if err != nil {
			return nil, err
		}
		out[g.path(p)] = data
	}
	return out, nil
}

// Write writes files (as Files or Kubeconfigs return them) under root,
// which is "/" on a real node and a scratch directory in tests: each path
// is joined to root. Files are replaced atomically with mode.
func Write(root string, files map[string][]byte, mode os.FileMode) error {
	paths := make([]string, 0, len(files))
	for p := range files {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			return fmt.Errorf("write config: %q is not a clean absolute path", p)
		}
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if err := writeAtomic(filepath.Join(root, p), files[p], mode); err != nil {
			return err
		}
	}
	return nil
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, data, mode)
}
