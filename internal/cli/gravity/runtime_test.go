package gravity

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opengravity/gravity/internal/runtime/node"
)

func runtimeCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := NewCommand(&stdout, &stderr)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return stdout.String(), err
}

func TestRuntimeStatusNotRunning(t *testing.T) {
	out, err := runtimeCLI(t, "runtime", "status", "-o", "json", "--run-dir", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var st node.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if st.State != node.StateStopped {
		t.Errorf("state %q, want stopped", st.State)
	}
	out, err = runtimeCLI(t, "runtime", "status", "--run-dir", t.TempDir())
	if err != nil || !strings.HasPrefix(out, "runtime: stopped\nPROCESS") {
		t.Errorf("text status %q, %v", out, err)
	}
}

func TestRuntimeStopNotRunning(t *testing.T) {
	out, err := runtimeCLI(t, "runtime", "stop", "--run-dir", t.TempDir())
	if err != nil || !strings.Contains(out, "not running") {
		t.Errorf("stop: %q, %v", out, err)
	}
}

// A bad node config is refused before anything is daemonized.
func TestRuntimeStartBadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.yaml")
	if err := os.WriteFile(path, []byte("ip: 192.0.2.1\nbogus: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := runtimeCLI(t, "runtime", "start", "--config", path); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("err = %v, want the unknown field named", err)
	}
	if _, err := runtimeCLI(t, "runtime", "start"); err == nil {
		t.Error("no --config: no error")
	}
}

// --config finds the run directory the node config names.
func TestRuntimeStatusFromConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node.yaml")
	cfg := "ip: 192.0.2.20\nclusterName: example\nmasterIPs: [192.0.2.10]\nnodePodCIDR: 10.244.3.0/24\nrunDir: " + dir + "/run\n"
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	status := `{"pid": 42, "state": "failed", "error": "etcd: boom", "processes": [{"name": "etcd", "state": "failed"}]}`
	if err := os.WriteFile(filepath.Join(dir, "run", node.StatusFileName), []byte(status), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runtimeCLI(t, "runtime", "status", "--config", path)
	if err != nil || !strings.Contains(out, "runtime: failed (etcd: boom)") || !strings.Contains(out, "etcd") {
		t.Errorf("status: %q, %v", out, err)
	}
	if _, err := runtimeCLI(t, "runtime", "status", "--config", path, "--run-dir", dir); err == nil {
		t.Error("--config with --run-dir: no error")
	}
}
