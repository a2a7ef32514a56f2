package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// systemctlRecorder stands in for systemctl: it records each call and
// answers `show` with mainPID.
type systemctlRecorder struct {
	calls   []string
	mainPID int
	fail    string // a call that fails
}

func (r *systemctlRecorder) exec(_ context.Context, name string, args ...string) ([]byte, error) {
	call := strings.Join(append([]string{name}, args...), " ")
	r.calls = append(r.calls, call)
	if call == r.fail {
		return nil, errors.New("exit status 1")
	}
	if len(args) > 0 && args[0] == "show" {
		return []byte(strconv.Itoa(r.mainPID) + "\n"), nil
	}
	return nil, nil
}

// systemdRoot is a host root where systemd is the init (or not).
func systemdRoot(t *testing.T, booted bool) string {
	t.Helper()
	root := t.TempDir()
	if booted {
		if err := os.MkdirAll(filepath.Join(root, systemdRunDir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestSystemdDetection(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(t *testing.T, root string)
		want bool
	}{
		{"no /run/systemd", func(*testing.T, string) {}, false},
		{"/run/systemd without system", func(t *testing.T, root string) { mkdir(t, root, "run/systemd") }, false},
		{"/run/systemd/system", func(t *testing.T, root string) { mkdir(t, root, "run/systemd/system") }, true},
		{"a file, not a directory", func(t *testing.T, root string) {
			mkdir(t, root, "run/systemd")
			if err := os.WriteFile(filepath.Join(root, systemdRunDir), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tc.make(t, root)
			if got := (Service{Root: root}).Systemd(); got != tc.want {
				t.Errorf("Systemd() = %v, want %v", got, tc.want)
			}
		})
	}
}

func mkdir(t *testing.T, root, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestUnit(t *testing.T) {
	text, err := Unit("/usr/bin/gravity", "/etc/gravity/node.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(text, "\n")
	for _, want := range []string{
		"[Unit]", "[Service]", "[Install]",
		"After=network-online.target", "Wants=network-online.target",
		"Type=notify", "NotifyAccess=main",
		"ExecStart=/usr/bin/gravity runtime start --config /etc/gravity/node.yaml --foreground",
		"Restart=always", "RestartSec=5", "KillMode=process", "Delegate=yes",
		"LimitNOFILE=1048576", "TasksMax=infinity", "WantedBy=multi-user.target",
	} {
		if n := countLines(lines, want); n != 1 {
			t.Errorf("%q appears %d times, want once:\n%s", want, n, text)
		}
	}
	// Each directive is set once: systemd would take the last, or for
	// ExecStart= run both.
	seen := map[string]bool{}
	for _, l := range lines {
		if key, _, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			if seen[key] {
				t.Errorf("%s set twice", key)
			}
			seen[key] = true
		}
	}
	if strings.Index(text, "[Unit]") > strings.Index(text, "[Service]") ||
		strings.Index(text, "[Service]") > strings.Index(text, "[Install]") {
		t.Errorf("sections out of order:\n%s", text)
	}
	if !strings.HasPrefix(execStartOf(t, text), "/usr/bin/gravity ") {
		t.Error("ExecStart does not run the binary given")
	}
}

func countLines(lines []string, want string) int {
	n := 0
	for _, l := range lines {
		if l == want {
			n++
		}
	}
	return n
}

func execStartOf(t *testing.T, text string) string {
	t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
			return v
		}
	}
	t.Fatalf("no ExecStart in\n%s", text)
	return ""
}

func TestUnitExecStartQuoting(t *testing.T) {
	for _, tc := range []struct {
		exe, config, want, err string
	}{
		{exe: "/opt/gravity/bin/gravity", config: "/etc/node.yaml",
			want: "/opt/gravity/bin/gravity runtime start --config /etc/node.yaml --foreground"},
		{exe: "/opt/my gravity/gravity", config: "/etc/node 1.yaml",
			want: `"/opt/my gravity/gravity" runtime start --config "/etc/node 1.yaml" --foreground`},
		{exe: "/usr/bin/gravity", config: `/etc/a"b\c;d.yaml`,
			want: `/usr/bin/gravity runtime start --config "/etc/a\"b\\c;d.yaml" --foreground`},
		// Specifiers and variables are expanded even outside quotes.
		{exe: "/usr/bin/gravity", config: "/etc/100%/$HOME.yaml",
			want: "/usr/bin/gravity runtime start --config /etc/100%%/$$HOME.yaml --foreground"},
		{exe: "gravity", config: "/etc/node.yaml", err: "not an absolute path"},
		{exe: "/usr/bin/gravity", config: "node.yaml", err: "not an absolute path"},
		{exe: "/usr/bin/gravity", config: "/etc/node\n.yaml", err: "control character"},
	} {
		text, err := Unit(tc.exe, tc.config)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Unit(%q, %q): err = %v, want %q", tc.exe, tc.config, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Unit(%q, %q): %v", tc.exe, tc.config, err)
			continue
		}
		if got := execStartOf(t, text); got != tc.want {
			t.Errorf("Unit(%q, %q): ExecStart=%s\nwant ExecStart=%s", tc.exe, tc.config, got, tc.want)
		}
	}
}

// The unit's command line is the one the daemon path runs, and the CLI
// accepts it (internal/cli/gravity tests the flags themselves).
func TestForegroundArgs(t *testing.T) {
	got := ForegroundArgs("/etc/node.yaml")
	want := []string{"runtime", "start", "--config", "/etc/node.yaml", "--foreground"}
	if !slices.Equal(got, want) {
		t.Errorf("ForegroundArgs = %q, want %q", got, want)
	}
}

const (
	testExe    = "/usr/bin/gravity"
	testConfig = "/etc/gravity/node.yaml"
)

// Start writes the unit once, reloads systemd only when the unit changed,
// and always has systemd enable and start it.
func TestServiceStart(t *testing.T) {
	root := systemdRoot(t, true)
	rec := &systemctlRecorder{}
	svc := Service{Root: root, Exec: rec.exec}
	runDir := t.TempDir()
	steps := []struct {
		name, config string
		want         []string
	}{
		{"first start", testConfig, []string{"systemctl daemon-reload", "systemctl enable --now " + UnitName}},
		{"second start", testConfig, []string{"systemctl enable --now " + UnitName}},
		{"other config", "/etc/gravity/other.yaml", []string{"systemctl daemon-reload", "systemctl enable --now " + UnitName}},
	}
	for _, step := range steps {
		rec.calls = nil
		if err := svc.Start(context.Background(), testExe, step.config, runDir); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if !slices.Equal(rec.calls, step.want) {
			t.Errorf("%s: systemctl calls %q, want %q", step.name, rec.calls, step.want)
		}
		checkUnitFile(t, root, step.config)
	}
}

// checkUnitFile checks the installed unit is the one for config, 0644, and
// alone in its directory (no temporary file left).
func checkUnitFile(t *testing.T, root, config string) {
	t.Helper()
	want, err := Unit(testExe, config)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, UnitPath)
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Errorf("unit file: %v\n%s\nwant\n%s", err, got, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode() != 0o644 {
		t.Errorf("unit file mode: %v, %v", fi.Mode(), err)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil || len(entries) != 1 {
		t.Errorf("unit directory holds %v (%v), want the unit alone", entries, err)
	}
}

// The unit is replaced by rename, never rewritten in place: systemd (or a
// crash) never sees half a unit.
func TestServiceStartReplacesAtomically(t *testing.T) {
	root := systemdRoot(t, true)
	svc := Service{Root: root, Exec: (&systemctlRecorder{}).exec}
	if err := svc.Start(context.Background(), testExe, testConfig, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	old, err := os.Open(filepath.Join(root, UnitPath))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := svc.Start(context.Background(), testExe, "/etc/gravity/other.yaml", t.TempDir()); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1<<16)
	n, _ := old.ReadAt(data, 0)
	if !strings.Contains(string(data[:n]), testConfig) {
		t.Errorf("the old unit's file was rewritten in place:\n%s", data[:n])
	}
	checkUnitFile(t, root, "/etc/gravity/other.yaml")
}

func TestServiceStartSystemctlFails(t *testing.T) {
	root := systemdRoot(t, true)
	rec := &systemctlRecorder{fail: "systemctl daemon-reload"}
	err := Service{Root: root, Exec: rec.exec}.Start(context.Background(), testExe, testConfig, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "exit status 1") {
		t.Errorf("err = %v, want systemctl's failure", err)
	}
	if !slices.Equal(rec.calls, []string{"systemctl daemon-reload"}) {
		t.Errorf("calls %q: enable after a failed reload", rec.calls)
	}
}

// startFakeDaemon runs a process holding runDir as the runtime does.
func startFakeDaemon(t *testing.T, runDir string) int {
	t.Helper()
	cmd := exec.Command(filepath.Join(fakeBinDir(t, "runtime-daemon"), "runtime-daemon"), runDir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := WaitStarted(ctx, runDir, cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// With a runtime already running, Start is a no-op when it is the unit's,
// and refused when it is not, or when the unit would change under it.
func TestServiceStartRunning(t *testing.T) {
	runDir := t.TempDir()
	pid := startFakeDaemon(t, runDir)
	for _, tc := range []struct {
		name      string
		installed bool
		mainPID   int
		config    string
		err       string
		calls     []string
	}{
		{"daemon, no unit", false, 0, testConfig, "already running outside systemd", nil},
		{"daemon, unit stopped", true, 0, testConfig, "already running outside systemd",
			[]string{"systemctl show --property=MainPID --value " + UnitName}},
		{"the unit's", true, pid, testConfig, "",
			[]string{"systemctl show --property=MainPID --value " + UnitName, "systemctl enable --now " + UnitName}},
		{"the unit's, unit changed", true, pid, "/etc/gravity/other.yaml", "from a different " + UnitName,
			[]string{"systemctl show --property=MainPID --value " + UnitName}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := systemdRoot(t, true)
			if tc.installed {
				installUnit(t, root, testConfig)
			}
			rec := &systemctlRecorder{mainPID: tc.mainPID}
			err := Service{Root: root, Exec: rec.exec}.Start(context.Background(), testExe, tc.config, runDir)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("err = %v, want %q", err, tc.err)
			}
			if !slices.Equal(rec.calls, tc.calls) {
				t.Errorf("calls %q, want %q", rec.calls, tc.calls)
			}
		})
	}
}

func installUnit(t *testing.T, root, config string) {
	t.Helper()
	text, err := Unit(testExe, config)
	if err != nil {
		t.Fatal(err)
	}
	mkdir(t, root, filepath.Dir(UnitPath))
	if err := os.WriteFile(filepath.Join(root, UnitPath), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestServiceStopRuntime(t *testing.T) {
	stop := "systemctl stop " + UnitName
	for _, tc := range []struct {
		name              string
		booted, installed bool
		daemon            bool
		calls             []string
		err               error
	}{
		{"no systemd, nothing running", false, false, false, nil, ErrNotRunning},
		{"no systemd, daemon", false, false, true, nil, nil},
		// A unit file left on a host that no longer boots systemd is not
		// systemd's to stop.
		{"no systemd, stale unit", false, true, true, nil, nil},
		{"systemd, no unit, nothing running", true, false, false, nil, ErrNotRunning},
		{"systemd, no unit, daemon", true, false, true, nil, nil},
		{"systemd, unit, nothing running", true, true, false, []string{stop}, ErrNotRunning},
		{"systemd, unit, and a daemon outside it", true, true, true, []string{stop}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := systemdRoot(t, tc.booted)
			if tc.installed {
				installUnit(t, root, testConfig)
			}
			runDir := t.TempDir()
			if tc.daemon {
				startFakeDaemon(t, runDir)
			}
			rec := &systemctlRecorder{}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := Service{Root: root, Exec: rec.exec}.StopRuntime(ctx, runDir)
			if !errors.Is(err, tc.err) || tc.err == nil && err != nil {
				t.Errorf("err = %v, want %v", err, tc.err)
			}
			if !slices.Equal(rec.calls, tc.calls) {
				t.Errorf("calls %q, want %q", rec.calls, tc.calls)
			}
			if _, err := runningPID(runDir); !errors.Is(err, ErrNotRunning) {
				t.Errorf("still running after stop: %v", err)
			}
		})
	}
}

// A runtime systemd stopped is reported stopped, not "not running".
func TestServiceStopRuntimeUnit(t *testing.T) {
	root := systemdRoot(t, true)
	installUnit(t, root, testConfig)
	runDir := t.TempDir()
	startFakeDaemon(t, runDir)
	// systemctl stop is the fake daemon's SIGTERM, as systemd would send.
	svc := Service{Root: root, Exec: func(ctx context.Context, name string, args ...string) ([]byte, error) {
		return nil, Stop(ctx, runDir)
	}}
	if err := svc.StopRuntime(context.Background(), runDir); err != nil {
		t.Errorf("StopRuntime: %v", err)
	}
}

// systemd's own parser, offline, where it is installed (it is on these
// hosts, though systemd does not run): the unit has no bad setting and
// ExecStart, quoting included, names an executable.
func TestUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("no systemd-analyze")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "my gravity")
	if err := os.Symlink(self, exe); err != nil {
		t.Fatal(err)
	}
	text, err := Unit(exe, filepath.Join(dir, `100% "$HOME".yaml`))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, UnitName)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s\n%s", err, out, text)
	}
}

func TestServiceUninstall(t *testing.T) {
	for _, booted := range []bool{true, false} {
		t.Run(fmt.Sprint("systemd ", booted), func(t *testing.T) {
			root := systemdRoot(t, booted)
			installUnit(t, root, testConfig)
			rec := &systemctlRecorder{}
			svc := Service{Root: root, Exec: rec.exec}
			if err := svc.Uninstall(context.Background()); err != nil {
				t.Fatal(err)
			}
			if svc.Installed() {
				t.Error("the unit file is still there")
			}
			want := []string(nil)
			if booted {
				want = []string{"systemctl disable " + UnitName, "systemctl daemon-reload"}
			}
			if !slices.Equal(rec.calls, want) {
				t.Errorf("calls %q, want %q", rec.calls, want)
			}
			// Again: nothing to do, nothing called.
			rec.calls = nil
			if err := svc.Uninstall(context.Background()); err != nil || len(rec.calls) != 0 {
				t.Errorf("second uninstall: %v, calls %q", err, rec.calls)
			}
		})
	}
}
