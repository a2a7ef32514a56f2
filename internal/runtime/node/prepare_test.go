package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opengravity/gravity/internal/runtime/config"
)

func TestPrepareMaster(t *testing.T) {
	n := bootstrapped(t)
	root := t.TempDir()
	// Prepare writes under root; the secrets are where Bootstrap put them.
	if err := os.MkdirAll(filepath.Dir(filepath.Join(root, n.StateDir)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(n.StateDir, filepath.Join(root, n.StateDir)); err != nil {
		t.Fatal(err)
	}
	if err := prepare(root, n, strings.NewReader(hybridMountinfo)); err != nil {
		t.Fatal(err)
	}
	d, err := n.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	files, err := config.Files(d)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range files {
		got, err := os.ReadFile(filepath.Join(root, path))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s: %v, content matches %v", path, err, string(got) == string(want))
		}
		// Literal, not config.FileMode: this is the contract.
		if info, err := os.Stat(filepath.Join(root, path)); err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", path, info.Mode().Perm(), err)
		}
	}
	p := d.Paths()
	for path, mode := range map[string]os.FileMode{
		p.EtcdData: 0o700, p.RegistryStorage: 0o700, p.LogDir: 0o755, p.RunDir: 0o755,
		"/sys/fs/cgroup/memory" + d.CgroupRoot:  0o755,
		"/sys/fs/cgroup/systemd" + d.CgroupRoot: 0o755,
		"/sys/fs/cgroup/unified" + d.CgroupRoot: 0o755,
	} {
		info, err := os.Stat(filepath.Join(root, path))
		if err != nil || !info.IsDir() || info.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want a directory with mode %v", path, info, err, mode)
		}
	}
}

func TestPrepareWorkerV2(t *testing.T) {
	root := t.TempDir()
	n := worker(t)
	if err := prepare("/", n, strings.NewReader(strings.ReplaceAll(v2Mountinfo, "/sys/fs/cgroup", root+"/cg"))); err != nil {
		t.Fatal(err)
	}
	d, _ := n.WithDefaults()
	if _, err := os.Stat(filepath.Join(root, "cg", d.CgroupRoot)); err != nil {
		t.Errorf("cgroup root: %v", err)
	}
	if _, err := os.Stat(d.Paths().EtcdData); !os.IsNotExist(err) {
		t.Errorf("a worker got an etcd data directory: %v", err)
	}
	if _, err := os.Stat(d.Paths().KubeletConfig); err != nil {
		t.Errorf("kubelet config: %v", err)
	}
}

// Without its certificates a node is refused before anything is written.
func TestPrepareNeedsSecrets(t *testing.T) {
	n := testMaster(t)
	err := prepare("/", n, strings.NewReader(v2Mountinfo))
	if err == nil || !strings.Contains(err.Error(), "ca.crt is missing") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(n.StateDir); !os.IsNotExist(err) {
		t.Errorf("state directory made anyway: %v", err)
	}
	m := bootstrapped(t)
	if err := os.Remove(m.Paths().Kubeconfig(config.KubeconfigScheduler)); err != nil {
		t.Fatal(err)
	}
	if err := prepare("/", m, strings.NewReader(v2Mountinfo)); err == nil || !strings.Contains(err.Error(), "scheduler.conf") {
		t.Errorf("missing kubeconfig: err = %v", err)
	}
}

// A runtime started from a config kept elsewhere leaves a copy where its
// components read it; one that is there already is never replaced.
func TestPrepareKeepsNodeConfig(t *testing.T) {
	n := bootstrapped(t)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(root, n.StateDir)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(n.StateDir, filepath.Join(root, n.StateDir)); err != nil {
		t.Fatal(err)
	}
	if err := prepare(root, n, strings.NewReader(hybridMountinfo)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, n.Paths().NodeConfig)
	got, err := LoadNode(path)
	if err != nil || !got.IP.Equal(n.IP) {
		t.Fatalf("node config copy: %v, %v", got.IP, err)
	}
	if err := os.WriteFile(path, []byte("# the admin's own\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := prepare(root, n, strings.NewReader(hybridMountinfo)); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); string(data) != "# the admin's own\n" {
		t.Fatalf("prepare replaced an existing node config: %q", data)
	}
}
