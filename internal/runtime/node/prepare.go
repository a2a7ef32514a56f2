package node

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/runtime/config"
)

// Prepare makes everything node n's components expect before they start:
// the generated configuration files, the directories nobody else creates
// with the right modes, and the kubelet's cgroup root in every cgroup
// hierarchy of the host. It checks that the node's certificates and
// kubeconfigs are there (Bootstrap, IssueNode) so that a node missing them
// fails here, by name, rather than in a crash loop. root prefixes every
// path as in config.Write; the cgroup hierarchies are those of
// /proc/self/mountinfo.
func Prepare(root string, n config.Node) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	defer f.Close()
	return prepare(root, n, f)
}

func prepare(root string, n config.Node, mountinfo io.Reader) error {
	n, err := n.WithDefaults()
	if err != nil {
		return err
	}
	if err := checkSecrets(root, n); err != nil {
		return err
	}
	files, err := config.Files(n)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	if err := config.Write(root, files, config.FileMode); err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	if err := keepNodeConfig(root, n); err != nil {
		return err
	}
	if err := makeDirs(root, n); err != nil {
		return err
	}
	cgroups, err := CgroupDirs(mountinfo, n.CgroupRoot)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	for _, d := range cgroups {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return fmt.Errorf("prepare: cgroup root: %w", err)
		}
	}
	return nil
}

// keepNodeConfig writes n where the node's components that read its
// config (the cluster service, the pod network agent) look for it, when a
// runtime started from a config kept elsewhere left nothing there.
// install and join write it there themselves; it is never replaced.
func keepNodeConfig(root string, n config.Node) error {
	path := filepath.Join(root, n.Paths().NodeConfig)
	if _, err := os.Stat(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	data, err := FormatNode(n)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	if err := config.Write(root, map[string][]byte{n.Paths().NodeConfig: data}, config.FileMode); err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	return nil
}

// makeDirs creates the directories the components need but do not create,
// or create with modes they then complain about: etcd warns about (newer
// versions refuse) a data directory anyone but its owner can read.
func makeDirs(root string, n config.Node) error {
	p := n.Paths()
	type dir struct {
		path string
		mode fs.FileMode
	}
	// kubelet's root must exist before ShareMount can bind it.
	dirs := []dir{{p.LogDir, 0o755}, {p.RunDir, 0o755}, {p.KubeletRoot, 0o750}}
	if n.IsMaster() {
		dirs = append(dirs, dir{p.EtcdData, 0o700}, dir{p.RegistryStorage, 0o700}, dir{filepath.Dir(p.RegistrySocket), 0o700})
	}
	for _, d := range dirs {
		path := filepath.Join(root, d.path)
		if err := os.MkdirAll(path, d.mode); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		if err := os.Chmod(path, d.mode); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
	}
	return nil
}

// checkSecrets fails on the first certificate, key or kubeconfig node n's
// components read that is missing.
func checkSecrets(root string, n config.Node) error {
	p := n.Paths()
	need := []string{p.Cert(pki.ClusterCAName)}
	pairs := []string{pki.KubeletServer, pki.RegistryClient, pki.Agent}
	kubeconfigs := []string{config.KubeconfigKubelet, config.KubeconfigKubeProxy}
	if n.IsMaster() {
		need = append(need, p.Cert(pki.EtcdCAName), p.Cert(pki.FrontProxyCAName), p.Key(pki.ClusterCAName), p.SAPublicKey(),
			p.Key(pki.ServiceAccountKeyName), p.EncryptionConfig)
		pairs = append(pairs, pki.EtcdServer, pki.EtcdPeer, pki.APIServerEtcdClient, pki.APIServer,
			pki.APIServerKubeletClient, pki.FrontProxyClient, pki.Admin, pki.RegistryServer, pki.ClusterService, pki.AgentClient)
		kubeconfigs = append(kubeconfigs, config.KubeconfigAdmin, config.KubeconfigControllerManager, config.KubeconfigScheduler,
			config.KubeconfigCSRApprover, config.KubeconfigClusterService)
	}
	for _, pair := range pairs {
		need = append(need, p.Cert(pair), p.Key(pair))
	}
	for _, k := range kubeconfigs {
		need = append(need, p.Kubeconfig(k))
	}
	for _, f := range need {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("prepare: %s is missing: issue the node's certificates first", f)
			}
			return fmt.Errorf("prepare: %w", err)
		}
	}
	return nil
}
