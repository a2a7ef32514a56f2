package supervisor

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A supervisor killed with SIGKILL leaves its processes running; the next one
// on the same run directory must kill them before starting its own.
func TestLeftoversOfKilledSupervisorAreCleaned(t *testing.T) {
	t.Parallel()
	mark, run, logs := newMark(t), t.TempDir(), t.TempDir()
	old := exec.Command(os.Args[0])
	old.Env = append(os.Environ(), helperEnv+"=supervise", "LEFTOVER_MARK="+mark, "RUN_DIR="+run, "LOG_DIR="+logs)
	out, err := old.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	old.Stderr = os.Stderr
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "started\n" {
		t.Fatalf("old supervisor said %q, %v", line, err)
	}
	eventually(t, long, "child and grandchild", func() bool { return len(marked(mark)) == 2 })
	leftovers := marked(mark)
	if err := old.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := old.Wait(); err == nil {
		t.Fatal("old supervisor exited cleanly; want killed")
	}
	time.Sleep(100 * time.Millisecond)
	if got := marked(mark); len(got) != 2 {
		t.Fatalf("after killing the old supervisor, its processes %v, want %v still running", got, leftovers)
	}

	p := helper(t, "leftover", mark)
	p.LogDir = logs
	s, err := New(Config{RunDir: run, Processes: []Process{p}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	newPID := s.Status()[0].PID
	for _, pid := range leftovers {
		if alive(pid) {
			t.Errorf("leftover pid %d still alive", pid)
		}
	}
	if got := marked(mark); len(got) != 1 || got[0] != newPID {
		t.Errorf("marked processes %v, want only the new %d", got, newPID)
	}
	log := readFile(t, filepath.Join(logs, "leftover.log"))
	if strings.Count(log, "start #1:") != 2 {
		t.Errorf("log should show both supervisors' starts:\n%s", log)
	}
}

// A PID file whose pid now names someone else's process must not get that
// process killed.
func TestStalePIDFileOfAnotherProcessIsNotKilled(t *testing.T) {
	t.Parallel()
	run := t.TempDir()
	bystander := exec.Command(os.Args[0])
	bystander.Env = append(os.Environ(), helperEnv+"=1")
	// A group leader, as our processes are, so only the record check saves it.
	bystander.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { bystander.Process.Kill(); bystander.Wait() }()
	st, err := readStat(bystander.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	for name, rec := range map[string]pidRecord{
		"other-start": {PID: bystander.Process.Pid, Start: st.Start + 1, Path: os.Args[0]},
		"other-path":  {PID: bystander.Process.Pid, Start: st.Start, Path: "/usr/bin/etcd"},
	} {
		if err := writePIDFile(filepath.Join(run, name+".pid"), rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(run, "garbage.pid"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	var procs []Process
	for _, name := range []string{"other-start", "other-path", "garbage"} {
		procs = append(procs, helper(t, name, newMark(t)))
	}
	s, err := New(Config{RunDir: run, Processes: procs})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if !alive(bystander.Process.Pid) {
		t.Errorf("bystander pid %d was killed", bystander.Process.Pid)
	}
}

// Daemonize must not hold the caller's pipe: the reader sees EOF as soon as
// the caller exits, while the daemon keeps running in its own session.
func TestDaemonizeDetaches(t *testing.T) {
	t.Parallel()
	logFile := filepath.Join(t.TempDir(), "log", "daemon.log")
	caller := exec.Command(os.Args[0])
	// The caller is a supervised process: what it daemonizes is not, so a
	// supervisor cleaning up after the caller leaves it alone.
	supervised := markerEnv + "=" + filepath.Join(t.TempDir(), "agent")
	caller.Env = append(os.Environ(), helperEnv+"=daemonize", "DAEMON_LOG="+logFile, markEnv+"="+newMark(t), supervised)
	var stderr strings.Builder
	caller.Stderr = &stderr
	out, err := caller.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := caller.Start(); err != nil {
		t.Fatal(err)
	}
	read := make(chan string, 1)
	go func() {
		var b strings.Builder
		_, _ = bufio.NewReader(out).WriteTo(&b)
		read <- b.String()
	}()
	var got string
	select {
	case got = <-read:
	case <-time.After(long):
		t.Fatal("no EOF on the caller's stdout: the daemon holds the pipe")
	}
	if err := caller.Wait(); err != nil {
		t.Fatalf("caller: %v: %s", err, stderr.String())
	}
	var pid int
	if _, err := fmt.Sscanf(got, "%d\n", &pid); err != nil {
		t.Fatalf("caller printed %q: %v", got, err)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	if !alive(pid) {
		t.Fatalf("daemon %d is not running", pid)
	}
	if slices.Contains(withEnv(supervised), pid) {
		t.Errorf("the daemon carries its caller's supervisor marker %s", supervised)
	}
	if st, err := readStat(pid); err != nil || st.SID != pid {
		t.Errorf("daemon session %d, %v; want its own (%d)", st.SID, err, pid)
	}
	eventually(t, long, "daemon output in its log", func() bool {
		data, _ := os.ReadFile(logFile)
		return strings.Contains(string(data), "daemon up\nstderr: daemon up\n")
	})
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, long, "daemon exit", func() bool { return !alive(pid) })
}

// cleanLeftovers finds a previous instance by its PID file (its whole group,
// even members without the marker) or by the marker alone (orphans whose
// leader is gone).
func TestCleanLeftovers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		pidFile    bool
		markerEnv  bool
		wantKilled bool
	}{
		{"pid file, group without marker", true, false, true},
		{"marker, no pid file", false, true, true},
		{"neither", false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			run, mark := t.TempDir(), newMark(t)
			cmd := exec.Command(os.Args[0], "-grandchild")
			cmd.Env = append(os.Environ(), helperEnv+"=1", markEnv+"="+mark)
			if tc.markerEnv {
				cmd.Env = append(cmd.Env, markerEnv+"="+marker(run, "etcd"))
			}
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go cmd.Wait()
			defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			eventually(t, long, "child and grandchild", func() bool { return len(marked(mark)) == 2 })
			if tc.pidFile {
				st, err := readStat(cmd.Process.Pid)
				if err != nil {
					t.Fatal(err)
				}
				rec := pidRecord{PID: cmd.Process.Pid, Start: st.Start, Path: os.Args[0]}
				if err := writePIDFile(filepath.Join(run, "etcd.pid"), rec); err != nil {
					t.Fatal(err)
				}
			}
			if err := cleanLeftovers(discard(), run, "etcd"); err != nil {
				t.Fatal(err)
			}
			left := len(marked(mark))
			if tc.wantKilled && left != 0 || !tc.wantKilled && left != 2 {
				t.Errorf("%d processes left, want killed=%v", left, tc.wantKilled)
			}
			if _, err := os.Stat(filepath.Join(run, "etcd.pid")); !os.IsNotExist(err) {
				t.Errorf("pid file not removed: %v", err)
			}
		})
	}
}
