package supervisor

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"time"
)

// Defaults applied to zero fields of a Process.
const (
	DefaultBackoffMin   = 500 * time.Millisecond
	DefaultBackoffMax   = 30 * time.Second
	DefaultBackoffReset = 10 * time.Second
	DefaultStopTimeout  = 10 * time.Second
	DefaultReadyTimeout = 60 * time.Second
)

// Backoff is the delay between restarts: Min after the first exit, doubling
// up to Max. A process that stayed up for at least Reset is considered
// healthy again, so its next crash waits only Min.
type Backoff struct {
	Min, Max, Reset time.Duration
}

// Process describes one supervised program.
type Process struct {
	// Name names the process in logs, errors, the PID file and the log file.
	Name string
	// Path is the executable; Args are its arguments (without argv[0]).
	Path string
	Args []string
	// Env is added to the supervisor's own environment.
	Env []string
	// Dir is the working directory; empty means the supervisor's.
	Dir string
	// LogDir receives <Name>.log (stdout and stderr, appended).
	LogDir string
	// RestartBackoff paces restarts after exits.
	RestartBackoff Backoff
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	StopTimeout time.Duration
	// Ready is the readiness probe, called repeatedly until it returns nil.
	// A nil Ready means ready as soon as the process has started.
	Ready func(ctx context.Context) error
	// ReadyTimeout bounds the wait for Ready during Supervisor.Start.
	ReadyTimeout time.Duration
	// RestartIfNotReady, when set, restarts the process once if its first
	// start is not ready that long after it began: for a program whose
	// first start can stall on a lost message that it retries only after
	// a long timeout, while a second start does not hit it.
	RestartIfNotReady time.Duration
	// Ports are the TCP ports the process will listen on; each must be free
	// before every start, so a conflict is reported by name rather than as a
	// crash loop with a bind error buried in the log.
	Ports []int
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]*$`)

// validate checks what can be checked before anything starts.
func (p Process) validate() error {
	if !validName.MatchString(p.Name) {
		return fmt.Errorf("process name %q: must match %s", p.Name, validName)
	}
	if p.Path == "" {
		return fmt.Errorf("%s: no path", p.Name)
	}
	if p.LogDir == "" {
		return fmt.Errorf("%s: no log directory", p.Name)
	}
	b := p.RestartBackoff
	if b.Min < 0 || b.Max < 0 || b.Reset < 0 || (b.Max != 0 && b.Min > b.Max) {
		return fmt.Errorf("%s: bad restart backoff %v..%v (reset %v)", p.Name, b.Min, b.Max, b.Reset)
	}
	if p.StopTimeout < 0 || p.ReadyTimeout < 0 || p.RestartIfNotReady < 0 {
		return fmt.Errorf("%s: negative timeout", p.Name)
	}
	for _, port := range p.Ports {
		if port <= 0 || port > 65535 {
			return fmt.Errorf("%s: bad port %d", p.Name, port)
		}
	}
	return nil
}

// withDefaults fills zero fields.
func (p Process) withDefaults() Process {
	if p.RestartBackoff.Min == 0 {
		p.RestartBackoff.Min = DefaultBackoffMin
	}
	if p.RestartBackoff.Max == 0 {
		p.RestartBackoff.Max = max(DefaultBackoffMax, p.RestartBackoff.Min)
	}
	if p.RestartBackoff.Reset == 0 {
		p.RestartBackoff.Reset = DefaultBackoffReset
	}
	if p.StopTimeout == 0 {
		p.StopTimeout = DefaultStopTimeout
	}
	if p.ReadyTimeout == 0 {
		p.ReadyTimeout = DefaultReadyTimeout
	}
	return p
}

func (p Process) logPath() string { return filepath.Join(p.LogDir, p.Name+".log") }

// next returns the delay after cur, doubling up to Max.
func (b Backoff) next(cur time.Duration) time.Duration {
	if cur <= 0 {
		return b.Min
	}
	return min(cur*2, b.Max)
}

// State is where a process is in its lifecycle.
type State string

// States reported by Status.
const (
	StateStarting   State = "starting"   // launched, readiness not yet seen
	StateReady      State = "ready"      // readiness probe passed
	StateRestarting State = "restarting" // exited; waiting out the backoff
	StateStopped    State = "stopped"    // stopped on request, or not started
	StateFailed     State = "failed"     // could not be started or never became ready
)

// ProcessStatus is a snapshot of one process.
type ProcessStatus struct {
	Name     string
	PID      int // 0 when not running
	State    State
	Restarts int    // starts after the first
	LastExit string // e.g. "exit status 1", "signal: killed"; empty before any exit
	Since    time.Time
}
