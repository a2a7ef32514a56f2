package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opengravity/gravity/internal/runtime/config"
)

func TestPIDFileLock(t *testing.T) {
	dir := t.TempDir()
	if _, err := runningPID(dir); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("no pid file: %v", err)
	}
	f, err := takePIDFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if pid, err := runningPID(dir); err != nil || pid != os.Getpid() {
		t.Errorf("running pid %d, %v; want ours", pid, err)
	}
	if _, err := takePIDFile(dir); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second daemon: err = %v", err)
	}
	releasePIDFile(f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := runningPID(dir); !errors.Is(err, ErrNotRunning) {
		t.Errorf("after release: %v", err)
	}
	// A file nobody locks is a dead daemon's, whatever pid it names.
	if err := os.WriteFile(filepath.Join(dir, PIDFileName), []byte("1234\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := runningPID(dir); !errors.Is(err, ErrNotRunning) {
		t.Errorf("stale pid file: %v", err)
	}
}

// Stop and WaitStarted against a real process holding the run directory.
func TestStopDaemon(t *testing.T) {
	runDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := Stop(ctx, runDir); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("stop without a daemon: %v", err)
	}
	bin := fakeBinDir(t, "runtime-daemon")
	cmd := exec.Command(filepath.Join(bin, "runtime-daemon"), runDir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if err := WaitStarted(ctx, runDir, pid); err != nil {
		_ = cmd.Process.Kill()
		t.Fatal(err)
	}
	if err := Stop(ctx, runDir); err != nil {
		_ = cmd.Process.Kill()
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(runDir, PIDFileName)); !os.IsNotExist(err) {
		t.Errorf("pid file left: %v", err)
	}
}

// A daemon that dies before it takes the run directory is reported.
func TestWaitStartedDaemonDies(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "exit 3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := WaitStarted(ctx, t.TempDir(), cmd.Process.Pid)
	if err == nil || !strings.Contains(err.Error(), "exited at start (status 3)") {
		t.Errorf("err = %v", err)
	}
}

func TestReadStatusNotRunning(t *testing.T) {
	dir := t.TempDir()
	st, err := ReadStatus(dir)
	if !errors.Is(err, ErrNotRunning) || st.State != StateStopped {
		t.Errorf("no daemon: %+v, %v", st, err)
	}
	// A daemon killed while running could not record it.
	writeStatus(config.Node{RunDir: dir, BinDir: "/usr/lib/gravity/9.9.9/bin"}, StateRunning, nil, nil, slog.Default())
	st, err = ReadStatus(dir)
	if !errors.Is(err, ErrNotRunning) || st.State != StateStopped || st.PID != os.Getpid() || st.BinDir != "/usr/lib/gravity/9.9.9/bin" {
		t.Errorf("killed daemon: %+v, %v", st, err)
	}
	if err := os.WriteFile(filepath.Join(dir, StatusFileName), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadStatus(dir); err == nil || errors.Is(err, ErrNotRunning) {
		t.Errorf("corrupt status: %v", err)
	}
}

// freePorts skips the test unless the fixed ports are free here.
func freePorts(t *testing.T, ports ...int) {
	t.Helper()
	for _, p := range ports {
		ln, err := net.Listen("tcp", hostPort(loopback, p))
		if err != nil {
			t.Skipf("port %d is taken on this machine: %v", p, err)
		}
		ln.Close()
	}
}

// A worker's runtime, end to end with stand-ins for containerd, kubelet
// and kube-proxy: prepared, started in order with its probes passing,
// published in the status file, and stopped on cancel.
func TestRunWorker(t *testing.T) {
	freePorts(t, 6443, KubeletPort, KubeletHealthzPort, KubeProxyHealthzPort, KubeProxyMetricsPort, AgentHealthPort)
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:9")
	n := worker(t)
	n.BinDir = fakeBinDir(t, "containerd", "kubelet", "kube-proxy")
	cg := t.TempDir()
	notified, shared := make(chan string, 10), make(chan string, 1)
	opts := runOptions{
		mountinfo: func() (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader(strings.ReplaceAll(v2Mountinfo, "/sys/fs/cgroup", cg))), nil
		},
		statusInterval: 20 * time.Millisecond,
		notify:         func(state string) error { notified <- state; return nil },
		shareMount:     func(d string) error { shared <- d; return nil },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done, finished := make(chan error, 1), make(chan struct{})
	go func() {
		done <- run(ctx, n, slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
		close(finished)
	}()
	// Also when the test fails early: stop the runtime and wait, or its
	// processes outlive the test.
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(30 * time.Second):
			t.Error("run did not stop")
		}
	})
	st := waitState(t, n.RunDir, StateRunning, done)
	if d := <-shared; d != n.Paths().KubeletRoot {
		t.Errorf("shared mount %s, want kubelet's root %s", d, n.Paths().KubeletRoot)
	}
	if len(st.Processes) != 7 {
		t.Fatalf("status %+v", st)
	}
	for i, want := range []string{APILB, Containerd, Kubelet, KubeProxy, PodNetwork, Agent, SSH} {
		p := st.Processes[i]
		if p.Name != want || p.State != "ready" || p.PID == 0 {
			t.Errorf("process %d: %+v, want %s ready", i, p, want)
		}
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", st.Processes[1].PID))
	if err != nil || !strings.Contains(string(env), "\x00HTTPS_PROXY=\x00") || strings.Contains(string(env), "127.0.0.1:9") {
		t.Errorf("containerd environment keeps the caller's proxy: %v\n%q", err, env)
	}
	if _, err := os.Stat(filepath.Join(cg, "gravity-192.0.2.20")); err != nil {
		t.Errorf("cgroup root: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	st, err = ReadStatus(n.RunDir)
	if !errors.Is(err, ErrNotRunning) || st.State != StateStopped {
		t.Errorf("after stop: %+v, %v", st, err)
	}
	// systemd (Type=notify) hears of readiness once, after every probe
	// passed, then of the stop.
	close(notified)
	var states []string
	for s := range notified {
		states = append(states, s)
	}
	if len(states) != 2 || states[0] != "READY=1\nSTATUS=running" || states[1] != "STOPPING=1" {
		t.Errorf("sd_notify states %q", states)
	}
	for _, p := range st.Processes {
		if p.State != "stopped" || p.PID != 0 {
			t.Errorf("after stop: %+v", p)
		}
	}
	logs, err := os.ReadFile(filepath.Join(n.LogDir, "kubelet.log"))
	if err != nil || !strings.Contains(string(logs), "fake serving on 127.0.0.1:10248") {
		t.Errorf("kubelet log: %v\n%s", err, logs)
	}
}

func waitState(t *testing.T, runDir, state string, done <-chan error) Status {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		st, err := ReadStatus(runDir)
		if err == nil && st.State == state {
			return st
		}
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v (status %+v)", err, st)
		case <-deadline:
			t.Fatalf("state %q not reached: %+v, %v", state, st, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// A port taken by someone else fails the start by name, stops what was
// already started and leaves the failure in the status.
func TestRunPortInUse(t *testing.T) {
	freePorts(t, KubeletPort, KubeletHealthzPort, KubeProxyHealthzPort, KubeProxyMetricsPort)
	ln, err := net.Listen("tcp", hostPort(loopback, KubeletHealthzPort))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	n := worker(t)
	n.BinDir = fakeBinDir(t, "containerd", "kubelet", "kube-proxy")
	opts := runOptions{
		mountinfo:      func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("")), nil },
		statusInterval: 20 * time.Millisecond,
	}
	err = run(context.Background(), n, slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
	if err == nil || !strings.Contains(err.Error(), "kubelet: port 10248 is already in use") {
		t.Fatalf("err = %v", err)
	}
	st, err := ReadStatus(n.RunDir)
	if !errors.Is(err, ErrNotRunning) || st.State != StateFailed || !strings.Contains(st.Error, "port 10248") {
		t.Errorf("status %+v, %v", st, err)
	}
	for _, p := range st.Processes {
		if p.PID != 0 {
			t.Errorf("left running: %+v", p)
		}
	}
}

// One restart at a time: a second is told so, and the lock goes with its
// holder.
func TestLockRestart(t *testing.T) {
	dir := t.TempDir()
	unlock, err := LockRestart(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockRestart(dir); !errors.Is(err, ErrRestarting) {
		t.Fatalf("second restart: %v", err)
	}
	unlock()
	again, err := LockRestart(dir)
	if err != nil {
		t.Fatalf("after the first ended: %v", err)
	}
	again()
}
