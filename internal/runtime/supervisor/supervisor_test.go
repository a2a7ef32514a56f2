package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestOrderedStartWaitsForReadinessAndStopsInReverse(t *testing.T) {
	t.Parallel()
	mark, dir := newMark(t), t.TempDir()
	record := filepath.Join(dir, "events")
	portA, portB, portC := freePort(t), freePort(t), freePort(t)
	a := helper(t, "a", mark, "-name", "a", "-record", record, "-listen", fmt.Sprint(portA), "-listen-delay", "300ms")
	a.Ready, a.Ports = TCPProbe(fmt.Sprintf("127.0.0.1:%d", portA)), []int{portA}
	b := helper(t, "b", mark, "-name", "b", "-record", record, "-listen", fmt.Sprint(portB))
	b.Ready = TCPProbe(fmt.Sprintf("127.0.0.1:%d", portB))
	c := helper(t, "c", mark, "-name", "c", "-record", record, "-listen", fmt.Sprint(portC))
	c.Ready = TCPProbe(fmt.Sprintf("127.0.0.1:%d", portC))
	s, err := New(Config{RunDir: filepath.Join(dir, "run"), Processes: []Process{a, b, c}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, st := range s.Status() {
		if st.State != StateReady || st.PID == 0 || st.Restarts != 0 {
			t.Errorf("after Start: %+v, want ready with a pid and no restarts", st)
		}
		if _, err := readPIDFile(filepath.Join(dir, "run", st.Name+".pid")); err != nil {
			t.Errorf("pid file of %s: %v", st.Name, err)
		}
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	want := "a start\na listening\nb start\nb listening\nc start\nc listening\nc stop\nb stop\na stop\n"
	if got := readFile(t, record); got != want {
		t.Errorf("events:\n%s\nwant:\n%s", got, want)
	}
	for _, st := range s.Status() {
		if st.State != StateStopped || st.PID != 0 || st.LastExit != "exit status 0" {
			t.Errorf("after Stop: %+v, want stopped after exit status 0", st)
		}
		if _, err := os.Stat(filepath.Join(dir, "run", st.Name+".pid")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pid file of %s after Stop: %v, want none", st.Name, err)
		}
	}
	if left := marked(mark); len(left) > 0 {
		t.Errorf("processes left after Stop: %v", left)
	}
}

var startLine = regexp.MustCompile(`(?m)^--- (\S+) start #(\d+): `)

func TestCrashIsRestartedWithBackoffAndLogged(t *testing.T) {
	t.Parallel()
	mark := newMark(t)
	p := helper(t, "crasher", mark, "-print", "about to crash", "-exit", "3", "-after", "50ms")
	p.RestartBackoff = Backoff{Min: 100 * time.Millisecond, Max: 400 * time.Millisecond, Reset: time.Minute}
	s := startSupervisor(t, p)
	eventually(t, long, "4 restarts", func() bool { return s.Status()[0].Restarts >= 4 })
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if st := s.Status()[0]; st.LastExit == "" {
		t.Errorf("status %+v: no last exit", st)
	}
	log := readFile(t, p.logPath())
	for _, want := range []string{
		"start #1: " + os.Args[0] + " -print \"about to crash\" -exit 3 -after 50ms\n",
		"about to crash\n", "stderr: about to crash\n", "exited: exit status 3 (pid ", "start #2: ",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	// Each gap between starts is the run (50ms) plus a doubling delay.
	var starts []time.Time
	for _, m := range startLine.FindAllStringSubmatch(log, -1) {
		ts, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			t.Fatal(err)
		}
		starts = append(starts, ts)
	}
	delays := []time.Duration{100, 200, 400, 400}
	for i, d := range delays {
		if i+1 >= len(starts) {
			break
		}
		gap := starts[i+1].Sub(starts[i])
		if lo, hi := d*time.Millisecond+50*time.Millisecond, d*time.Millisecond+5*time.Second; gap < lo || gap > hi {
			t.Errorf("gap before start #%d = %v, want %v..%v", i+2, gap, lo, hi)
		}
	}
}

func TestRestartedProcessIsProbedAgain(t *testing.T) {
	t.Parallel()
	mark, port := newMark(t), freePort(t)
	p := helper(t, "api", mark, "-listen", fmt.Sprint(port), "-listen-delay", "100ms", "-exit", "1", "-after", "400ms")
	p.Ready, p.Ports = TCPProbe(fmt.Sprintf("127.0.0.1:%d", port)), []int{port}
	s := startSupervisor(t, p)
	var seen []State
	eventually(t, long, "ready again after a restart", func() bool {
		st := s.Status()[0]
		if len(seen) == 0 || seen[len(seen)-1] != st.State {
			seen = append(seen, st.State)
		}
		return st.Restarts == 1 && st.State == StateReady && st.LastExit == "exit status 1"
	})
	// Polling may miss the short restarting state, never the probe.
	if !slices.Contains(seen, StateStarting) {
		t.Errorf("states seen %v: the restart skipped the readiness probe", seen)
	}
}

// A first start that stalls is restarted once, and Start goes on; a
// start that is ready in time is left alone.
func TestRestartIfNotReady(t *testing.T) {
	t.Parallel()
	mark, dir := newMark(t), t.TempDir()
	port, quickPort := freePort(t), freePort(t)
	p := helper(t, "stalls", mark, "-listen", fmt.Sprint(port), "-stall-once", filepath.Join(dir, "stalled"))
	p.Ready, p.Ports = TCPProbe(fmt.Sprintf("127.0.0.1:%d", port)), []int{port}
	p.RestartIfNotReady = 300 * time.Millisecond
	quick := helper(t, "quick", mark, "-listen", fmt.Sprint(quickPort), "-listen-delay", "100ms")
	quick.Ready, quick.Ports = TCPProbe(fmt.Sprintf("127.0.0.1:%d", quickPort)), []int{quickPort}
	quick.RestartIfNotReady = 5 * time.Second
	s := startSupervisor(t, p, quick)
	st := s.Status()
	if st[0].State != StateReady || st[0].Restarts != 1 {
		t.Errorf("the stalled process: %+v, want ready after one restart", st[0])
	}
	if st[1].State != StateReady || st[1].Restarts != 0 {
		t.Errorf("the quick process: %+v, want ready and never restarted", st[1])
	}
}

func TestSIGTERMIgnoredIsKilledAfterStopTimeout(t *testing.T) {
	t.Parallel()
	mark, record := newMark(t), filepath.Join(t.TempDir(), "events")
	p := helper(t, "stubborn", mark, "-ignore-term", "-record", record, "-name", "stubborn")
	p.StopTimeout = 300 * time.Millisecond
	s, err := New(Config{RunDir: t.TempDir(), Processes: []Process{p}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Readiness (nil probe) comes at once; let the helper install its handler.
	eventually(t, long, "helper start", func() bool {
		data, _ := os.ReadFile(record)
		return len(data) > 0
	})
	t0 := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(t0); took < p.StopTimeout || took > p.StopTimeout+long {
		t.Errorf("Stop took %v, want about %v", took, p.StopTimeout)
	}
	if st := s.Status()[0]; st.LastExit != "signal: killed" {
		t.Errorf("last exit %q, want signal: killed", st.LastExit)
	}
	if got := readFile(t, record); got != "stubborn start\nstubborn ignored-term\n" {
		t.Errorf("events %q", got)
	}
	if !strings.Contains(readFile(t, p.logPath()), "exited: signal: killed") {
		t.Errorf("log lacks the kill")
	}
}

func TestGrandchildrenDieWithTheGroup(t *testing.T) {
	t.Parallel()
	mark := newMark(t)
	p := helper(t, "parent", mark, "-grandchild")
	s, err := New(Config{RunDir: t.TempDir(), Processes: []Process{p}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, long, "child and grandchild", func() bool { return len(marked(mark)) == 2 })
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if left := marked(mark); len(left) > 0 {
		t.Errorf("processes left after Stop: %v", left)
	}
}

func TestCrashKillsOrphanedGrandchildren(t *testing.T) {
	t.Parallel()
	mark := newMark(t)
	p := helper(t, "parent", mark, "-grandchild", "-exit", "1", "-after", "300ms")
	p.RestartBackoff = Backoff{Min: 5 * time.Second}
	s := startSupervisor(t, p)
	eventually(t, long, "the crash", func() bool { return s.Status()[0].State == StateRestarting })
	if left := marked(mark); len(left) > 0 {
		t.Errorf("processes left after the crash, before the restart: %v", left)
	}
}

// stuckAtB is a supervisor whose second process (with a grandchild) never
// becomes ready, so Start is still running when a test interrupts it.
type stuckAtB struct {
	s    *Supervisor
	b, c Process
	mark string
}

func newStuckAtB(t *testing.T) stuckAtB {
	t.Helper()
	mark := newMark(t)
	a := helper(t, "a", mark)
	b := helper(t, "b", mark, "-grandchild")
	b.Ready = TCPProbe(fmt.Sprintf("127.0.0.1:%d", freePort(t))) // never listens
	b.ReadyTimeout = long
	c := helper(t, "c", mark)
	s, err := New(Config{RunDir: t.TempDir(), Processes: []Process{a, b, c}})
	if err != nil {
		t.Fatal(err)
	}
	return stuckAtB{s: s, b: b, c: c, mark: mark}
}

// checkAborted: nothing of the interrupted start is left, and the process
// after the stuck one never ran.
func (x stuckAtB) checkAborted(t *testing.T) {
	t.Helper()
	if left := marked(x.mark); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
	if _, err := os.Stat(x.c.logPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("c was started: %v", err)
	}
}

func TestCancelMidStartLeavesNoProcess(t *testing.T) {
	t.Parallel()
	x := newStuckAtB(t)
	s, b := x.s, x.b
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for !grandchildStarted(s, b)() {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	err := s.Start(ctx)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "b: waiting for readiness") {
		t.Fatalf("Start: %v, want b cancelled while waiting for readiness", err)
	}
	x.checkAborted(t)
	states := map[string]State{}
	for _, st := range s.Status() {
		states[st.Name] = st.State
	}
	if states["a"] != StateStopped || states["b"] != StateFailed || states["c"] != StateStopped {
		t.Errorf("states %v", states)
	}
}

func TestStopDuringStartAbortsIt(t *testing.T) {
	t.Parallel()
	x := newStuckAtB(t)
	s, b := x.s, x.b
	started := make(chan error, 1)
	go func() { started <- s.Start(context.Background()) }()
	eventually(t, long, "b and its grandchild", grandchildStarted(s, b))
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := <-started; err == nil || !strings.Contains(err.Error(), "b: stopped before it was ready") {
		t.Errorf("Start: %v, want b stopped before it was ready", err)
	}
	x.checkAborted(t)
}

func TestNotReadyInTimeFailsStartAndStopsAll(t *testing.T) {
	t.Parallel()
	mark := newMark(t)
	a := helper(t, "a", mark)
	b := helper(t, "b", mark, "-exit", "7", "-after", "10ms")
	b.Ready = func(context.Context) error { return errors.New("no /readyz yet") }
	b.ReadyTimeout = 2 * time.Second
	s, err := New(Config{RunDir: t.TempDir(), Processes: []Process{a, b}})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "b: not ready after 2s") ||
		!strings.Contains(err.Error(), "last exit: exit status 7") || !strings.Contains(err.Error(), "no /readyz yet") {
		t.Fatalf("Start: %v, want b not ready, with its last exit and probe error", err)
	}
	if left := marked(mark); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
	if st := s.Status()[1]; st.State != StateFailed {
		t.Errorf("b: %+v, want failed", st)
	}
}

func TestPortInUseIsReportedByName(t *testing.T) {
	t.Parallel()
	mark := newMark(t)
	ln, port := listen(t)
	defer ln.Close()
	p := helper(t, "kube-apiserver", mark)
	p.Ports = []int{freePort(t), port}
	s, err := New(Config{RunDir: t.TempDir(), Processes: []Process{p}})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start(context.Background())
	var pe *PortInUseError
	if !errors.As(err, &pe) {
		t.Fatalf("Start: %v, want a PortInUseError", err)
	}
	exe, _ := os.Executable()
	want := fmt.Sprintf("kube-apiserver: port %d is already in use (by pid %d, %s)", port, os.Getpid(), exe)
	if err.Error() != want {
		t.Errorf("error %q\nwant  %q", err, want)
	}
	if !strings.Contains(readFile(t, p.logPath()), "not started: "+want) {
		t.Errorf("log lacks the port error")
	}
	if st := s.Status()[0]; st.State != StateFailed || st.LastExit != want {
		t.Errorf("status %+v", st)
	}
	if left := marked(mark); len(left) > 0 {
		t.Errorf("started anyway: %v", left)
	}
}

func TestMissingBinaryFailsStart(t *testing.T) {
	t.Parallel()
	p := helper(t, "etcd", newMark(t))
	p.Path = filepath.Join(t.TempDir(), "no-such-etcd")
	s, err := New(Config{RunDir: t.TempDir(), Processes: []Process{p}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "etcd: starting ") {
		t.Fatalf("Start: %v, want etcd: starting …", err)
	}
	if st := s.Status()[0]; st.State != StateFailed {
		t.Errorf("status %+v", st)
	}
}

func TestSecondSupervisorOnSameRunDirIsRefused(t *testing.T) {
	t.Parallel()
	run := t.TempDir()
	s1, err := New(Config{RunDir: run, Processes: []Process{helper(t, "a", newMark(t))}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2, err := New(Config{RunDir: run, Processes: []Process{helper(t, "a", newMark(t))}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "another supervisor") {
		t.Errorf("second Start: %v, want another supervisor", err)
	}
	if st := s1.Status()[0]; st.State != StateReady {
		t.Errorf("first supervisor's process: %+v", st)
	}
	if err := s1.Stop(); err != nil {
		t.Fatal(err)
	}
}

// grandchildStarted tells whether p (the supervisor's second process, started
// with -grandchild) is starting and has spawned its child.
func grandchildStarted(s *Supervisor, p Process) func() bool {
	return func() bool {
		data, _ := os.ReadFile(p.logPath())
		return s.Status()[1].State == StateStarting && strings.Contains(string(data), "\ngrandchild ")
	}
}

// startSupervisor starts a supervisor of procs that the test's end stops.
func startSupervisor(t *testing.T, procs ...Process) *Supervisor {
	t.Helper()
	s, err := New(Config{RunDir: t.TempDir(), Processes: procs})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func TestOpenLogMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		f, err := OpenLog(path)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("log mode %v (%v), want 0600", info.Mode().Perm(), err)
		}
		os.Remove(path)
	}
}
