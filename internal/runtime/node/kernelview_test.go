package node

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestKernelView runs a command the way kubelet is run: it must see the
// tunables kubelet wants while the machine keeps its own values.
func TestKernelView(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root (mount namespaces)")
	}
	const key = "kernel/panic"
	before := readSysctl(t, key)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "sysctl")
	out, err := exec.Command(self, "runtime", KubeletExecCommand, "--sysctl-dir", dir, "--",
		"/bin/sh", "-c", "cat /proc/sys/kernel/panic /proc/sys/vm/overcommit_memory").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got := strings.Fields(string(out)); len(got) != 2 || got[0] != "10" || got[1] != "1" {
		t.Errorf("command saw kernel.panic, vm.overcommit_memory = %q, want 10 and 1", got)
	}
	if after := readSysctl(t, key); after != before {
		t.Errorf("the machine's %s changed from %s to %s", key, before, after)
	}
	if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(data), dir) {
		t.Errorf("the bind mounts leaked into the caller's namespace")
	}
}

func readSysctl(t *testing.T, key string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/proc/sys", key))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}
