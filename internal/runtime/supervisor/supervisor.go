package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// Config is what a Supervisor runs.
type Config struct {
	// RunDir holds the PID files and the lock that keeps two supervisors
	// from sharing them. It should not survive a reboot (/run/gravity).
	RunDir string
	// Processes are started in this order and stopped in reverse.
	Processes []Process
	// Logger receives the supervisor's own events; nil discards them.
	Logger *slog.Logger
}

// Supervisor runs an ordered list of processes. Start and Stop may be called
// from different goroutines; Stop during Start aborts the start.
type Supervisor struct {
	runDir  string
	log     *slog.Logger
	runners []*runner

	mu       sync.Mutex
	started  bool
	stopping bool
	launched int // runners whose loop was started
	lock     *os.File
}

// New validates cfg; nothing is started.
func New(cfg Config) (*Supervisor, error) {
	if cfg.RunDir == "" {
		return nil, errors.New("supervisor: no run directory")
	}
	runDir, err := filepath.Abs(cfg.RunDir)
	if err != nil {
		return nil, fmt.Errorf("supervisor: run directory: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Supervisor{runDir: runDir, log: log}
	seen := map[string]bool{}
	for _, p := range cfg.Processes {
		if err := p.validate(); err != nil {
			return nil, fmt.Errorf("supervisor: %w", err)
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("supervisor: process %q listed twice", p.Name)
		}
		seen[p.Name] = true
		s.runners = append(s.runners, newRunner(p.withDefaults(), runDir, log))
	}
	return s, nil
}

// Start cleans up what a previous supervisor left in the run directory, then
// starts each process in order, waiting for it to be ready before the next.
// On any failure, or when ctx is cancelled, it stops what it started and
// returns the error. ctx governs only the start: once Start returns nil, the
// processes run until Stop.
func (s *Supervisor) Start(ctx context.Context) (err error) {
	if err := s.begin(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Stop())
		}
	}()
	for _, r := range s.runners {
		if err := cleanLeftovers(s.log, s.runDir, r.p.Name); err != nil {
			return err
		}
	}
	for _, r := range s.runners {
		if err := s.startOne(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// begin takes the run directory for this supervisor.
func (s *Supervisor) begin() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("supervisor: already started")
	}
	if err := os.MkdirAll(s.runDir, 0o755); err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	for _, r := range s.runners {
		if err := os.MkdirAll(r.p.LogDir, 0o755); err != nil {
			return fmt.Errorf("supervisor: %s: %w", r.p.Name, err)
		}
	}
	lock, err := lockDir(s.runDir)
	if err != nil {
		return err
	}
	s.lock, s.started = lock, true
	return nil
}

// startOne launches r and waits until it is ready.
func (s *Supervisor) startOne(ctx context.Context, r *runner) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: not started: %w", r.p.Name, err)
	}
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return fmt.Errorf("%s: not started: supervisor stopping", r.p.Name)
	}
	s.launched++
	go r.loop()
	s.mu.Unlock()
	if err := <-r.first; err != nil {
		return err
	}
	s.log.Info("started; waiting for readiness", "process", r.p.Name, "pid", r.status().PID)
	if err := r.waitReady(ctx); err != nil {
		stopErr := r.halt()
		r.set(func(st *ProcessStatus) { st.State = StateFailed })
		return errors.Join(err, stopErr)
	}
	s.log.Info("ready", "process", r.p.Name)
	return nil
}

// Stop stops the processes in reverse order, each with SIGTERM and, after its
// StopTimeout, SIGKILL, to its whole process group. It is safe to call more
// than once and concurrently with Start.
func (s *Supervisor) Stop() error {
	s.mu.Lock()
	s.stopping = true
	launched := s.runners[:s.launched]
	s.mu.Unlock()
	var errs []error
	for i := len(launched) - 1; i >= 0; i-- {
		if err := launched[i].halt(); err != nil {
			errs = append(errs, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock != nil {
		if err := s.lock.Close(); err != nil {
			errs = append(errs, fmt.Errorf("supervisor: releasing run directory lock: %w", err))
		}
		s.lock = nil
	}
	return errors.Join(errs...)
}

// Status returns a snapshot of every process, in start order.
func (s *Supervisor) Status() []ProcessStatus {
	out := make([]ProcessStatus, 0, len(s.runners))
	for _, r := range s.runners {
		out = append(out, r.status())
	}
	return out
}

// lockDir takes an exclusive flock on <dir>/supervisor.lock. The kernel drops
// it when the holder dies, so a killed supervisor never blocks the next one.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "supervisor.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("supervisor: another supervisor is running with run directory %s", dir)
		}
		return nil, fmt.Errorf("supervisor: locking %s: %w", path, err)
	}
	return f, nil
}
