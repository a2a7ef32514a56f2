package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	probeInterval = 100 * time.Millisecond
	probeTimeout  = 2 * time.Second
)

// runner supervises one Process: it launches it, restarts it when it exits
// and stops it on request. One goroutine (loop) owns the lifecycle; the
// mutex guards only what Status and waitReady read.
type runner struct {
	p      Process
	runDir string
	log    *slog.Logger

	stop     chan struct{} // closed by halt
	haltOnce sync.Once
	done     chan struct{} // closed when loop returns
	first    chan error    // result of the first launch
	ready    chan struct{} // closed on the first readiness
	readyMu  sync.Once

	stopErr error // set by loop before done is closed

	mu        sync.Mutex
	st        ProcessStatus
	cur       *instance
	lastProbe error
}

// instance is one start of the process.
type instance struct {
	n       int
	cmd     *exec.Cmd
	pid     int
	started time.Time
	exited  chan struct{} // closed once err is set
	err     error
}

func newRunner(p Process, runDir string, log *slog.Logger) *runner {
	return &runner{
		p: p, runDir: runDir, log: log.With("process", p.Name),
		stop: make(chan struct{}), done: make(chan struct{}),
		first: make(chan error, 1), ready: make(chan struct{}),
		st: ProcessStatus{Name: p.Name, State: StateStopped, Since: time.Now()},
	}
}

// loop runs until halted or the first launch fails.
func (r *runner) loop() {
	defer close(r.done)
	var delay time.Duration
	for n := 1; ; n++ {
		inst, err := r.launch(n)
		if n == 1 {
			r.first <- err
			if err != nil {
				r.set(func(s *ProcessStatus) { s.State, s.LastExit = StateFailed, err.Error() })
				return
			}
		}
		if err != nil {
			r.log.Warn("restart failed", "err", err)
		} else {
			if r.watch(inst) {
				return
			}
			if time.Since(inst.started) >= r.p.RestartBackoff.Reset {
				delay = 0
			}
		}
		delay = r.p.RestartBackoff.next(delay)
		r.set(func(s *ProcessStatus) { s.State, s.PID = StateRestarting, 0 })
		select {
		case <-time.After(delay):
		case <-r.stop:
			r.set(func(s *ProcessStatus) { s.State = StateStopped })
			return
		}
	}
}

// launch starts instance n, with its output appended to the log file.
func (r *runner) launch(n int) (*instance, error) {
	f, err := OpenLog(r.p.logPath())
	if err != nil {
		return nil, fmt.Errorf("%s: opening log: %w", r.p.Name, err)
	}
	// The child holds its own copy of the descriptor.
	defer f.Close()
	if err := checkPorts(r.p.Name, r.p.Ports); err != nil {
		r.logLine(f, "not started: %v", err)
		return nil, err
	}
	cmd := r.command(f)
	r.logLine(f, "start #%d: %s", n, commandLine(r.p.Path, r.p.Args))
	if err := cmd.Start(); err != nil {
		r.logLine(f, "not started: %v", err)
		return nil, fmt.Errorf("%s: starting %s: %w", r.p.Name, r.p.Path, err)
	}
	inst := &instance{n: n, cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), exited: make(chan struct{})}
	go func() { inst.err = cmd.Wait(); close(inst.exited) }()
	if err := r.recordPID(inst); err != nil {
		r.signal(inst.pid, syscall.SIGKILL)
		<-inst.exited
		r.logLine(f, "exited: %s (pid file failed)", exitStatus(inst.err))
		return nil, err
	}
	r.mu.Lock()
	r.cur = inst
	r.st.PID, r.st.State, r.st.Restarts, r.st.Since = inst.pid, StateStarting, n-1, inst.started
	r.mu.Unlock()
	go r.probe(inst)
	return inst, nil
}

func (r *runner) command(out *os.File) *exec.Cmd {
	cmd := exec.Command(r.p.Path, r.p.Args...)
	cmd.Env = append(append(os.Environ(), r.p.Env...), markerEnv+"="+marker(r.runDir, r.p.Name))
	cmd.Dir = r.p.Dir
	cmd.Stdout, cmd.Stderr = out, out
	// Its own group, so that stopping it reaches everything it spawned.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

func (r *runner) recordPID(inst *instance) error {
	st, err := readStat(inst.pid)
	if err != nil {
		return fmt.Errorf("%s: reading start time of pid %d: %w", r.p.Name, inst.pid, err)
	}
	rec := pidRecord{PID: inst.pid, Start: st.Start, Path: r.p.Path}
	if err := writePIDFile(filepath.Join(r.runDir, r.p.Name+".pid"), rec); err != nil {
		return fmt.Errorf("%s: %w", r.p.Name, err)
	}
	return nil
}

// watch waits for inst to exit or for a stop; it reports whether stopped.
func (r *runner) watch(inst *instance) bool {
	select {
	case <-inst.exited:
		// Orphans of a crashed leader may hold its ports: clear the group
		// before the restart.
		r.signal(inst.pid, syscall.SIGKILL)
		r.exited(inst, StateRestarting)
		return false
	case <-r.stop:
		r.stopErr = r.terminate(inst)
		r.exited(inst, StateStopped)
		return true
	}
}

// terminate stops inst's whole group: SIGTERM, then SIGKILL after
// StopTimeout, for the leader and for whatever it leaves behind.
func (r *runner) terminate(inst *instance) error {
	deadline := time.Now().Add(r.p.StopTimeout)
	r.signal(inst.pid, syscall.SIGTERM)
	select {
	case <-inst.exited:
	case <-time.After(time.Until(deadline)):
		r.log.Warn("did not stop in time; killing", "timeout", r.p.StopTimeout)
		r.signal(inst.pid, syscall.SIGKILL)
		<-inst.exited
	}
	// The leader is gone but its children got the same SIGTERM: give them
	// what is left of the timeout.
	if waitGroupGone(inst.pid, deadline) {
		return nil
	}
	r.signal(inst.pid, syscall.SIGKILL)
	if !waitGroupGone(inst.pid, time.Now().Add(5*time.Second)) {
		return fmt.Errorf("%s: process group %d survived SIGKILL: %v", r.p.Name, inst.pid, groupMembers(inst.pid))
	}
	return nil
}

func (r *runner) exited(inst *instance, next State) {
	status := exitStatus(inst.err)
	if f, err := OpenLog(r.p.logPath()); err == nil {
		r.logLine(f, "exited: %s (pid %d, up %v)", status, inst.pid, time.Since(inst.started).Round(time.Millisecond))
		f.Close()
	} else {
		r.log.Warn("cannot append to log", "err", err)
	}
	if next == StateRestarting {
		r.log.Warn("exited; restarting", "status", status)
	}
	if err := os.Remove(filepath.Join(r.runDir, r.p.Name+".pid")); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.log.Warn("removing pid file", "err", err)
	}
	r.set(func(s *ProcessStatus) { s.State, s.PID, s.LastExit = next, 0, status })
}

// probe runs the readiness probe of inst until it passes or inst is over.
func (r *runner) probe(inst *instance) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-inst.exited:
		case <-r.stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	var restartAt time.Time
	if r.p.RestartIfNotReady > 0 && inst.n == 1 {
		restartAt = inst.started.Add(r.p.RestartIfNotReady)
	}
	for r.p.Ready != nil {
		pctx, pcancel := context.WithTimeout(ctx, probeTimeout)
		err := r.p.Ready(pctx)
		pcancel()
		if err == nil {
			break
		}
		r.mu.Lock()
		r.lastProbe = err
		r.mu.Unlock()
		if !restartAt.IsZero() && time.Now().After(restartAt) {
			// The loop sees it exit and starts it again.
			r.log.Warn("not ready in time: restarting it once", "after", r.p.RestartIfNotReady, "probe", err.Error())
			r.signal(inst.pid, syscall.SIGTERM)
			restartAt = time.Time{}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(probeInterval):
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == inst && r.st.State == StateStarting && ctx.Err() == nil {
		r.st.State, r.st.Since = StateReady, time.Now()
		r.readyMu.Do(func() { close(r.ready) })
	}
}

// waitReady waits for the first readiness of the process.
func (r *runner) waitReady(ctx context.Context) error {
	t := time.NewTimer(r.p.ReadyTimeout)
	defer t.Stop()
	select {
	case <-r.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: waiting for readiness: %w", r.p.Name, ctx.Err())
	case <-r.done:
		return fmt.Errorf("%s: stopped before it was ready", r.p.Name)
	case <-t.C:
		s := r.status()
		r.mu.Lock()
		last := r.lastProbe
		r.mu.Unlock()
		msg := fmt.Sprintf("%s: not ready after %v", r.p.Name, r.p.ReadyTimeout)
		if s.Restarts > 0 || s.LastExit != "" {
			msg += fmt.Sprintf(" (%d restarts, last exit: %s; see %s)", s.Restarts, s.LastExit, r.p.logPath())
		}
		if last != nil {
			return fmt.Errorf("%s: %w", msg, last)
		}
		return errors.New(msg)
	}
}

// halt stops the loop and waits for it; safe to call more than once.
func (r *runner) halt() error {
	r.haltOnce.Do(func() { close(r.stop) })
	<-r.done
	return r.stopErr
}

func (r *runner) set(f func(*ProcessStatus)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.st)
	r.st.Since = time.Now()
}

func (r *runner) status() ProcessStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

func (r *runner) logLine(f *os.File, format string, args ...any) {
	line := fmt.Sprintf("--- %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
	if _, err := f.WriteString(line); err != nil {
		r.log.Warn("cannot append to log", "err", err)
	}
}

// killGroup signals process group pgid. The group id stays reserved while
// any member lives, so after the leader is reaped this still reaches only
// its own remnants; ESRCH means there are none.
func killGroup(pgid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("sending %v to process group %d: %w", sig, pgid, err)
	}
	return nil
}

func (r *runner) signal(pgid int, sig syscall.Signal) {
	if err := killGroup(pgid, sig); err != nil {
		r.log.Error("cannot signal", "err", err)
	}
}

// waitGroupGone polls until group pgid has no live member or the deadline.
func waitGroupGone(pgid int, deadline time.Time) bool {
	for {
		if len(groupMembers(pgid)) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func exitStatus(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "exit status 0"
	case errors.As(err, &ee):
		return ee.ProcessState.String()
	default:
		return err.Error()
	}
}

func commandLine(path string, args []string) string {
	words := []string{path}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$") {
			a = strconv.Quote(a)
		}
		words = append(words, a)
	}
	return strings.Join(words, " ")
}
