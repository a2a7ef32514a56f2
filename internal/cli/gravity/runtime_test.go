package gravity

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
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
	fakeHost(t, false) // never the real host's unit
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

// fakeHost makes runtime start and stop see a host root, with systemd as
// its init or not, and records the systemctl calls instead of running them.
func fakeHost(t *testing.T, booted bool) (root string, calls *[]string) {
	t.Helper()
	root = t.TempDir()
	if booted {
		if err := os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	calls = new([]string)
	exec := func(_ context.Context, name string, args ...string) ([]byte, error) {
		*calls = append(*calls, strings.Join(append([]string{name}, args...), " "))
		return []byte("0\n"), nil
	}
	saved := runtimeService
	runtimeService = func() node.Service { return node.Service{Root: root, Exec: exec} }
	t.Cleanup(func() { runtimeService = saved })
	return root, calls
}

// nodeConfig writes a node config whose run directory is in a scratch
// directory.
func nodeConfig(t *testing.T) (path, runDir string) {
	t.Helper()
	dir := t.TempDir()
	path, runDir = filepath.Join(dir, "node.yaml"), filepath.Join(dir, "run")
	cfg := "ip: 192.0.2.20\nclusterName: example\nmasterIPs: [192.0.2.10]\nnodePodCIDR: 10.244.3.0/24\nrunDir: " + runDir + "\n"
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, runDir
}

// On a systemd host, start installs the unit running this binary in the
// foreground and has systemd start it; a second start changes nothing.
func TestRuntimeStartSystemd(t *testing.T) {
	root, calls := fakeHost(t, true)
	path, _ := nodeConfig(t)
	for i, want := range [][]string{
		{"systemctl daemon-reload", "systemctl enable --now " + node.UnitName},
		{"systemctl enable --now " + node.UnitName},
	} {
		*calls = nil
		out, err := runtimeCLI(t, "runtime", "start", "--config", path)
		if err != nil || !strings.Contains(out, "started by systemd") {
			t.Fatalf("start %d: %q, %v", i+1, out, err)
		}
		if !slices.Equal(*calls, want) {
			t.Errorf("start %d: systemctl calls %q, want %q", i+1, *calls, want)
		}
	}
	unit, err := os.ReadFile(filepath.Join(root, node.UnitPath))
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	want := "\nExecStart=" + exe + " runtime start --config " + path + " --foreground\n"
	if !strings.Contains(string(unit), want) {
		t.Errorf("unit lacks %q:\n%s", want, unit)
	}
	// The unit's flags are the start command's.
	if _, err := runtimeCLI(t, "runtime", "start", "--config", path, "--foreground", "--help"); err != nil {
		t.Errorf("the unit's command line: %v", err)
	}
}

// holdRunDir makes the run directory look held by a running daemon: the
// lock the daemon holds on its PID file.
func holdRunDir(t *testing.T, runDir string) {
	t.Helper()
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(runDir, node.PIDFileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.WriteString(strconv.Itoa(os.Getpid()) + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
}

// Which path start takes, told by how it refuses a run directory that a
// daemon holds: the daemon path without systemd, the unit's with it.
func TestRuntimeStartChoosesPath(t *testing.T) {
	for _, tc := range []struct {
		name   string
		booted bool
		err    string
	}{
		{"no /run/systemd/system: daemon", false, "node runtime: already running (pid"},
		{"systemd: unit", true, "already running outside systemd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, calls := fakeHost(t, tc.booted)
			path, runDir := nodeConfig(t)
			holdRunDir(t, runDir)
			_, err := runtimeCLI(t, "runtime", "start", "--config", path)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("err = %v, want %q", err, tc.err)
			}
			if len(*calls) != 0 {
				t.Errorf("systemctl calls %q", *calls)
			}
		})
	}
}

func TestRuntimeStopSystemd(t *testing.T) {
	root, calls := fakeHost(t, true)
	path, _ := nodeConfig(t)
	out, err := runtimeCLI(t, "runtime", "stop", "--config", path)
	if err != nil || !strings.Contains(out, "not running") || len(*calls) != 0 {
		t.Errorf("no unit: %q, %v, calls %q", out, err, *calls)
	}
	if _, err := runtimeCLI(t, "runtime", "start", "--config", path); err != nil {
		t.Fatal(err)
	}
	*calls = nil
	out, err = runtimeCLI(t, "runtime", "stop", "--config", path)
	if err != nil || !slices.Equal(*calls, []string{"systemctl stop " + node.UnitName}) {
		t.Errorf("stop: %q, %v, calls %q", out, err, *calls)
	}
	if _, err := os.Stat(filepath.Join(root, node.UnitPath)); err != nil {
		t.Errorf("stop removed the unit: %v", err)
	}
}
