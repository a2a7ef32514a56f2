package config

import (
	"path/filepath"

	"github.com/opengravity/gravity/internal/pki"
)

// What components keep outside the node's directories, at paths they
// hard-code; removed with the node.
const (
	HostCNICache      = "/var/lib/cni"        // libcni's result cache
	HostContainerLogs = "/var/log/containers" // kubelet's links to pod logs
)

// Paths is every file and directory the components use, derived from the
// node's StateDir, RunDir, LogDir and BinDir. Nothing lives outside them
// except what a component hard-codes: kubelet's /var/log/containers links
// and libcni's result cache under /var/lib/cni.
type Paths struct {
	// PKI is the certificate directory, in kubeadm's layout (pki.WriteDir).
	PKI string
	// Config holds the generated, non-secret configuration files.
	Config string
	// NodeConfig is the node's own config file (config.Node as YAML), which
	// the runtime is started from.
	NodeConfig string
	// Packages is the node's package store (an OCI layout): the cluster
	// image's packages on a master, what a joining node fetched on others.
	Packages string
	// Kubeconfigs hold client keys, so they live beside the PKI.
	Kubeconfigs string

	EtcdData string

	ContainerdRoot   string
	ContainerdState  string
	ContainerdSocket string
	ContainerdConfig string
	// ContainerdHosts is containerd's registry config_path (certs.d).
	ContainerdHosts string
	ContainerdOpt   string

	CNIBin      string
	CNIConf     string
	CNIIPAMData string

	KubeletRoot    string
	KubeletConfig  string
	KubeletPlugins string
	PodLogs        string
	ResolvConf     string

	KubeProxyConfig string
	AdmissionConfig string
	// EncryptionConfig holds the keys Secrets are encrypted with at rest
	// (pki.EncryptionConfigName): a secret, so beside the CA keys.
	EncryptionConfig string
	AuditPolicy      string
	// AuditLog is kube-apiserver's audit log, rotated by the server.
	AuditLog string

	RegistryStorage string
	RegistryConfig  string
	// RegistrySocket is where the registry listens: a unix socket only
	// root may open; the registry gate serves the network.
	RegistrySocket string

	Corefile string

	RunDir string
	LogDir string
	BinDir string
}

// Paths derives every path from n, which should have its defaults.
func (n Node) Paths() Paths {
	state, run := n.StateDir, n.RunDir
	cfg := filepath.Join(state, "config")
	return Paths{
		PKI:              filepath.Join(state, "secrets"),
		Config:           cfg,
		NodeConfig:       filepath.Join(cfg, "node.yaml"),
		Packages:         filepath.Join(state, "local", "packages"),
		Kubeconfigs:      filepath.Join(state, "secrets", "kubeconfig"),
		EtcdData:         filepath.Join(state, "etcd"),
		ContainerdRoot:   filepath.Join(state, "containerd", "root"),
		ContainerdState:  filepath.Join(run, "containerd", "state"),
		ContainerdSocket: filepath.Join(run, "containerd", "containerd.sock"),
		ContainerdConfig: filepath.Join(cfg, "containerd.toml"),
		ContainerdHosts:  filepath.Join(state, "containerd", "certs.d"),
		ContainerdOpt:    filepath.Join(state, "containerd", "opt"),
		CNIBin:           n.BinDir, // the runtime package keeps the CNI plugins beside the other binaries
		CNIConf:          filepath.Join(state, "cni", "net.d"),
		CNIIPAMData:      filepath.Join(state, "cni", "networks"),
		KubeletRoot:      filepath.Join(state, "kubelet"),
		KubeletConfig:    filepath.Join(cfg, "kubelet.yaml"),
		KubeletPlugins:   filepath.Join(state, "kubelet-plugins", "volume", "exec"),
		PodLogs:          filepath.Join(n.LogDir, "pods"),
		ResolvConf:       filepath.Join(cfg, "resolv.conf"),
		KubeProxyConfig:  filepath.Join(cfg, "kube-proxy.yaml"),
		AdmissionConfig:  filepath.Join(cfg, "admission.yaml"),
		EncryptionConfig: filepath.Join(state, "secrets", pki.EncryptionConfigName),
		AuditPolicy:      filepath.Join(cfg, "audit-policy.yaml"),
		AuditLog:         filepath.Join(n.LogDir, "kube-apiserver-audit.log"),
		RegistryStorage:  filepath.Join(state, "registry"),
		RegistryConfig:   filepath.Join(cfg, "registry.yaml"),
		RegistrySocket:   filepath.Join(run, "registry", "registry.sock"),
		Corefile:         filepath.Join(cfg, "Corefile"),
		RunDir:           run,
		LogDir:           n.LogDir,
		BinDir:           n.BinDir,
	}
}

// Cert and Key are the files of the key pair named name (a pki constant).
func (p Paths) Cert(name string) string {
	return filepath.Join(p.PKI, filepath.FromSlash(name)+pki.CertExt)
}
func (p Paths) Key(name string) string {
	return filepath.Join(p.PKI, filepath.FromSlash(name)+pki.KeyExt)
}

// SAPublicKey is sa.pub, which verifies service account tokens.
func (p Paths) SAPublicKey() string {
	return filepath.Join(p.PKI, pki.ServiceAccountKeyName+pki.PublicKeyExt)
}

// Kubeconfig is the kubeconfig file of a component (one of the Kubeconfig*
// names).
func (p Paths) Kubeconfig(component string) string {
	return filepath.Join(p.Kubeconfigs, component+".conf")
}

// Bin is the path of the runtime binary name.
func (p Paths) Bin(name string) string { return filepath.Join(p.BinDir, name) }

// Log is the log file of a service.
func (p Paths) Log(service string) string { return filepath.Join(p.LogDir, service+".log") }
