package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The daemon holds an exclusive flock on its PID file for as long as it
// runs. The kernel drops the lock when the daemon dies, however it dies,
// so a PID file nobody locks is stale, and no pid-reuse check is needed.
// The descriptor is close-on-exec: supervised processes do not inherit it.

// takePIDFile locks <runDir>/runtime.pid and writes our pid into it.
func takePIDFile(runDir string) (*os.File, error) {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("node runtime: %w", err)
	}
	path := filepath.Join(runDir, PIDFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("node runtime: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid, _ := readPID(path) // only for the message
			return nil, fmt.Errorf("node runtime: already running (pid %d, %s)", pid, path)
		}
		return nil, fmt.Errorf("node runtime: locking %s: %w", path, err)
	}
	if err := writePID(f, os.Getpid()); err != nil {
		f.Close()
		return nil, fmt.Errorf("node runtime: %s: %w", path, err)
	}
	return f, nil
}

func writePID(f *os.File, pid int) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(pid)+"\n"), 0); err != nil {
		return err
	}
	return f.Sync()
}

// releasePIDFile removes the PID file before it drops the lock, so nobody
// reads our pid once we are gone.
func releasePIDFile(f *os.File, log *slog.Logger) {
	if err := os.Remove(f.Name()); err != nil {
		log.Warn("cannot remove the pid file", "err", err)
	}
	if err := f.Close(); err != nil {
		log.Warn("cannot close the pid file", "err", err)
	}
}

func readPID(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parsePID(path, data)
}

func parsePID(path string, data []byte) (int, error) {
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("%s: bad pid %q", path, data)
	}
	return pid, nil
}

// RunningPID is the pid of the daemon of runDir, or ErrNotRunning.
func RunningPID(runDir string) (int, error) { return runningPID(runDir) }

func runningPID(runDir string) (int, error) {
	path := filepath.Join(runDir, PIDFileName)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, ErrNotRunning
	}
	if err != nil {
		return 0, fmt.Errorf("node runtime: %w", err)
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if err == nil {
		return 0, ErrNotRunning // nobody holds it: a dead daemon's file
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		return 0, fmt.Errorf("node runtime: locking %s: %w", path, err)
	}
	// Read what is open, not the path again: a daemon stopping at this
	// moment removes the file before it drops the lock.
	data, err := io.ReadAll(f)
	if err != nil {
		return 0, fmt.Errorf("node runtime: %s: %w", path, err)
	}
	pid, err := parsePID(path, data)
	if err != nil {
		return 0, fmt.Errorf("node runtime: %w", err)
	}
	return pid, nil
}

// Stop asks the daemon of runDir to stop (SIGTERM) and waits until it has
// stopped every process and exited, or ctx ends. It returns ErrNotRunning
// when there is no daemon.
func Stop(ctx context.Context, runDir string) error {
	pid, err := runningPID(runDir)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("node runtime: signalling pid %d: %w", pid, err)
	}
	return waitFor(ctx, func() (bool, error) {
		_, err := runningPID(runDir)
		if errors.Is(err, ErrNotRunning) {
			return true, nil
		}
		return false, err
	})
}

// WaitStarted waits until pid, a daemon this process started
// (supervisor.Daemonize), holds the PID file of runDir, so that a Stop
// right after finds it. It reaps the daemon and fails if it exits first.
func WaitStarted(ctx context.Context, runDir string, pid int) error {
	return waitFor(ctx, func() (bool, error) {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if err != nil && !errors.Is(err, syscall.ECHILD) {
			return false, fmt.Errorf("node runtime: waiting for pid %d: %w", pid, err)
		}
		if got == pid {
			return false, fmt.Errorf("node runtime: the daemon (pid %d) exited at start (status %d)", pid, ws.ExitStatus())
		}
		cur, err := runningPID(runDir)
		if errors.Is(err, ErrNotRunning) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if cur != pid {
			return false, fmt.Errorf("node runtime: another daemon (pid %d) holds %s", cur, filepath.Join(runDir, PIDFileName))
		}
		return true, nil
	})
}

func waitFor(ctx context.Context, done func() (bool, error)) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node runtime: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// ErrRestarting is LockRestart's answer while another restart runs.
var ErrRestarting = errors.New("another restart of the node runtime is in progress")

// LockRestart makes the caller the one process restarting the runtime of
// runDir (`gravity runtime restart`): a phase run again while its first
// run's restart goes on must not stop the runtime that restart starts.
// The lock goes with the process, however it ends.
func LockRestart(runDir string) (unlock func(), err error) {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("node runtime: %w", err)
	}
	path := filepath.Join(runDir, "runtime-restart.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("node runtime: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrRestarting
		}
		return nil, fmt.Errorf("node runtime: locking %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
