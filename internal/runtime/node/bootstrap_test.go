package node

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/runtime/config"
)

// bootstrapped is a master whose PKI Bootstrap wrote under its own dirs.
func bootstrapped(t *testing.T) config.Node {
	t.Helper()
	n := testMaster(t)
	if err := Bootstrap("/", n, ""); err != nil {
		t.Fatal(err)
	}
	return n
}

// modes lists every regular file under dir with its mode.
func modes(t *testing.T, dir string) map[string]fs.FileMode {
	t.Helper()
	out := map[string]fs.FileMode{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		out[rel] = info.Mode().Perm()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBootstrapMaster(t *testing.T) {
	root := t.TempDir()
	n := config.Node{IP: masterIP, Roles: []string{config.RoleMaster}, ClusterName: "example",
		MasterIPs: []net.IP{masterIP}, NodePodCIDR: "10.244.0.0/24"}
	if err := Bootstrap(root, n, "acme"); err != nil {
		t.Fatal(err)
	}
	secrets := filepath.Join(root, config.DefaultStateDir, "secrets")
	got := modes(t, secrets)
	want := []string{
		"ca.crt", "ca.key", "etcd/ca.crt", "etcd/ca.key", "front-proxy-ca.crt", "front-proxy-ca.key", "sa.key", "sa.pub",
		"etcd/server.key", "etcd/peer.key", "apiserver.key", "apiserver-etcd-client.key", "apiserver-kubelet-client.key",
		"front-proxy-client.key", "controller-manager.key", "scheduler.key", "admin.key", "registry.key",
		"kubelet.key", "kubelet-client.key", "kube-proxy.key", "registry-client.key",
		"kubeconfig/admin.conf", "kubeconfig/controller-manager.conf", "kubeconfig/scheduler.conf",
		"kubeconfig/kubelet.conf", "kubeconfig/kube-proxy.conf", "kubeconfig/csr-approver.conf", "csr-approver.key",
		"registry-pusher.key",
	}
	for _, f := range want {
		mode, ok := got[f]
		switch {
		case !ok:
			t.Errorf("%s not written", f)
		case mode != 0o600: // keys, kubeconfigs and certificates alike (CIS 1.1.20)
			t.Errorf("%s: mode %v, want 0600", f, mode)
		}
	}
	for f := range got {
		if strings.HasSuffix(f, ".key") {
			if _, ok := got[strings.TrimSuffix(f, ".key")+".crt"]; !ok && f != "sa.key" {
				t.Errorf("%s without its certificate", f)
			}
		}
	}
	cs, err := pki.LoadCASet(secrets)
	if err != nil {
		t.Fatal(err)
	}
	if cn := cs.Cluster.Cert.Subject.CommonName; cn != "acme" {
		t.Errorf("cluster CA common name %q, want the given cluster name", cn)
	}
	// The written certificates chain to the saved CA.
	kp, err := pki.LoadKeyPair(secrets, pki.APIServer)
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.Cluster.Verify(kp.Cert, pki.UsageServer, time.Now()); err != nil {
		t.Errorf("apiserver certificate: %v", err)
	}
}

func TestBootstrapRefusesExistingCA(t *testing.T) {
	n := bootstrapped(t)
	err := Bootstrap("/", n, "")
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("second bootstrap: err = %v, want ErrExist", err)
	}
}

func TestBootstrapRefusesWorker(t *testing.T) {
	if err := Bootstrap("/", testWorker(t), ""); err == nil {
		t.Error("worker bootstrapped a CA")
	}
}

// A worker gets its own certificates and the cluster CA certificate, and
// none of the CA keys.
func TestIssueNodeWorker(t *testing.T) {
	m := bootstrapped(t)
	cs, err := pki.LoadCASet(m.Paths().PKI)
	if err != nil {
		t.Fatal(err)
	}
	w := testWorker(t)
	if err := IssueNode("/", cs, w); err != nil {
		t.Fatal(err)
	}
	got := modes(t, w.Paths().PKI)
	want := map[string]fs.FileMode{
		"ca.crt": 0o600, "kubelet.crt": 0o600, "kubelet.key": 0o600, "kubelet-client.crt": 0o600,
		"kubelet-client.key": 0o600, "kube-proxy.crt": 0o600, "kube-proxy.key": 0o600,
		"registry-client.crt": 0o600, "registry-client.key": 0o600, "agent.crt": 0o600, "agent.key": 0o600,
		"kubeconfig/kubelet.conf": 0o600, "kubeconfig/kube-proxy.conf": 0o600,
	}
	if len(got) != len(want) {
		t.Errorf("files %v, want %v", got, want)
	}
	for f, mode := range want {
		if got[f] != mode {
			t.Errorf("%s: mode %v, want %v", f, got[f], mode)
		}
	}
	if info, err := os.Stat(w.Paths().PKI); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("PKI directory: %v, %v; want mode 0700", info, err)
	}
}

// A second master gets the whole CA set: its controller manager signs.
func TestIssueNodeMaster(t *testing.T) {
	m := bootstrapped(t)
	cs, err := pki.LoadCASet(m.Paths().PKI)
	if err != nil {
		t.Fatal(err)
	}
	m2 := testMaster(t)
	m2.IP = master2IP
	if err := IssueNode("/", cs, m2); err != nil {
		t.Fatal(err)
	}
	cs2, err := pki.LoadCASet(m2.Paths().PKI)
	if err != nil {
		t.Fatal(err)
	}
	if !cs2.Cluster.Cert.Equal(cs.Cluster.Cert) || !cs2.Etcd.Cert.Equal(cs.Etcd.Cert) {
		t.Error("the second master has different CAs")
	}
	if err := IssueNode("/", nil, m2); err == nil {
		t.Error("nil CA set: no error")
	}
}
