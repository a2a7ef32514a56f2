package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRemoveCgroups(t *testing.T) {
	base := t.TempDir()
	mi := strings.ReplaceAll(v2Mountinfo, "/sys/fs/cgroup", base)
	deep := filepath.Join(base, "gravity-n1", "kubepods", "besteffort", "pod1")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(base, "gravity-n2")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := RemoveCgroups(strings.NewReader(mi), "/gravity-n1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, "gravity-n1")); !os.IsNotExist(err) {
		t.Errorf("cgroup root left: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another node's cgroup removed: %v", err)
	}
	// Already gone is fine.
	if err := RemoveCgroups(strings.NewReader(mi), "/gravity-n1"); err != nil {
		t.Errorf("second removal: %v", err)
	}
}
