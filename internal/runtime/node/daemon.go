package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/runtime/supervisor"
	"github.com/opengravity/gravity/internal/version"
)

// Files of the runtime daemon: under RunDir its PID file and status, under
// LogDir its own log (each process has its own beside it).
const (
	PIDFileName    = "runtime.pid"
	StatusFileName = "runtime-status.json"
	DaemonLogName  = "runtime.log"
	// StatusInterval is how often Run rewrites the status file.
	StatusInterval = 2 * time.Second
)

// ErrNotRunning is returned by Stop and ReadStatus when no runtime daemon
// is running.
var ErrNotRunning = errors.New("the node runtime is not running")

// Runtime states in Status.
const (
	StateStarting = "starting"
	StateRunning  = "running"
	StateStopping = "stopping"
	StateStopped  = "stopped"
	StateFailed   = "failed"
)

// Status is what the daemon publishes in its status file.
type Status struct {
	PID   int    `json:"pid"`
	State string `json:"state"`
	// BinDir is the runtime version's binaries the daemon runs, and
	// Version the gravity version of the daemon (and of the gravity
	// components it runs): what an upgrade waits to see after switching
	// a node.
	BinDir    string          `json:"binDir,omitempty"`
	Version   string          `json:"version,omitempty"`
	Error     string          `json:"error,omitempty"`
	Updated   time.Time       `json:"updated"`
	Processes []ProcessStatus `json:"processes"`
}

// ProcessStatus is one supervised process in Status.
type ProcessStatus struct {
	Name     string    `json:"name"`
	PID      int       `json:"pid,omitempty"`
	State    string    `json:"state"`
	Restarts int       `json:"restarts"`
	LastExit string    `json:"lastExit,omitempty"`
	Since    time.Time `json:"since"`
}

// runOptions are what tests change about Run.
type runOptions struct {
	mountinfo      func() (io.ReadCloser, error)
	statusInterval time.Duration
	// notify tells systemd our state (sd_notify(3)) when it started us.
	notify func(state string) error
	// shareMount is ShareMount; nil leaves the mounts alone.
	shareMount func(dir string) error
}

func defaultRunOptions() runOptions {
	return runOptions{
		mountinfo:      func() (io.ReadCloser, error) { return os.Open("/proc/self/mountinfo") },
		statusInterval: StatusInterval,
		notify:         notifierFromEnv().notify,
		shareMount:     ShareMount,
	}
}

// Run is the runtime daemon: it prepares node n, starts its processes and
// supervises them until ctx is cancelled (SIGTERM), then stops them. An
// unset Snapshotter is detected (config.DetectSnapshotter) and logged.
// Cancelling ctx during the start is a stop, not an error.
func Run(ctx context.Context, n config.Node, log *slog.Logger) error {
	return run(ctx, n, log, defaultRunOptions())
}

func run(ctx context.Context, n config.Node, log *slog.Logger, o runOptions) error {
	n, err := resolve(n, log)
	if err != nil {
		return err
	}
	pid, err := takePIDFile(n.RunDir)
	if err != nil {
		return err
	}
	defer releasePIDFile(pid, log)
	// Replace the last run's status before the slow part.
	writeStatus(n, StateStarting, nil, nil, log)
	sup, err := newSupervisor(n, log, o)
	if err != nil {
		writeStatus(n, StateFailed, err, nil, log)
		return err
	}
	pub := startPublisher(n, sup, o.statusInterval, log)
	err = sup.Start(ctx)
	if err != nil && ctx.Err() == nil {
		pub.stop(StateFailed, err)
		return fmt.Errorf("node runtime: %w", err)
	}
	if err == nil {
		pub.set(StateRunning)
		log.Info("node runtime running")
		sdNotify(o, "READY=1\nSTATUS=running", log)
		<-ctx.Done()
	}
	pub.set(StateStopping)
	sdNotify(o, "STOPPING=1", log)
	log.Info("stopping the node runtime")
	err = sup.Stop()
	pub.stop(StateStopped, err)
	return err
}

// sdNotify logs a failure only: under systemd it shows as a start timeout,
// and the processes matter more than their report.
func sdNotify(o runOptions, state string, log *slog.Logger) {
	if o.notify == nil {
		return
	}
	if err := o.notify(state); err != nil {
		log.Warn("cannot notify systemd", "state", state, "err", err)
	}
}

// resolve picks the snapshotter when the config leaves it to us and
// applies the defaults.
func resolve(n config.Node, log *slog.Logger) (config.Node, error) {
	d, err := n.WithDefaults()
	if err != nil {
		return n, err
	}
	if n.Snapshotter == "" {
		name, reason := config.DetectSnapshotter(d.StateDir)
		d.Snapshotter = name
		level := slog.LevelInfo
		if name != config.SnapshotterOverlay {
			level = slog.LevelWarn
		}
		log.Log(context.Background(), level, "containerd snapshotter: "+reason, "snapshotter", name)
	}
	return d, nil
}

func newSupervisor(n config.Node, log *slog.Logger, o runOptions) (*supervisor.Supervisor, error) {
	mi, err := o.mountinfo()
	if err != nil {
		return nil, fmt.Errorf("node runtime: %w", err)
	}
	err = prepare("/", n, mi)
	if cerr := mi.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("node runtime: %w", cerr)
	}
	if err == nil && o.shareMount != nil {
		err = o.shareMount(n.Paths().KubeletRoot)
	}
	if err != nil {
		return nil, err
	}
	procs, err := Processes(n, LoadTLS)
	if err != nil {
		return nil, fmt.Errorf("node runtime: %w", err)
	}
	return supervisor.New(supervisor.Config{RunDir: n.RunDir, Processes: procs, Logger: log})
}

// publisher rewrites the status file every interval until stopped.
type publisher struct {
	set  func(state string)
	stop func(state string, err error)
}

func startPublisher(n config.Node, sup *supervisor.Supervisor, every time.Duration, log *slog.Logger) publisher {
	states := make(chan string)
	done := make(chan struct{})
	go func() {
		defer close(done)
		state := StateStarting
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			writeStatus(n, state, nil, sup.Status(), log)
			select {
			case s, ok := <-states:
				if !ok {
					return
				}
				state = s
			case <-tick.C:
			}
		}
	}()
	return publisher{
		set: func(s string) { states <- s },
		stop: func(s string, err error) {
			close(states)
			<-done
			writeStatus(n, s, err, sup.Status(), log)
		},
	}
}

// writeStatus replaces the status file atomically; a failure is logged,
// not fatal: the processes matter more than their report.
func writeStatus(n config.Node, state string, err error, procs []supervisor.ProcessStatus, log *slog.Logger) {
	runDir := n.RunDir
	st := Status{PID: os.Getpid(), State: state, BinDir: n.BinDir, Version: version.Version, Updated: time.Now().UTC(), Processes: []ProcessStatus{}}
	if err != nil {
		st.Error = err.Error()
	}
	for _, p := range procs {
		st.Processes = append(st.Processes, ProcessStatus{Name: p.Name, PID: p.PID, State: string(p.State),
			Restarts: p.Restarts, LastExit: p.LastExit, Since: p.Since.UTC()})
	}
	data, merr := json.MarshalIndent(st, "", "  ")
	if merr == nil {
		merr = config.Write("/", map[string][]byte{filepath.Join(runDir, StatusFileName): append(data, '\n')}, 0o644)
	}
	if merr != nil {
		log.Warn("cannot write the status file", "err", merr)
	}
}

// ReadStatus reads the status the daemon of runDir publishes. It returns
// ErrNotRunning when no daemon holds the PID file, together with the last
// status the daemon wrote (its state stopped, unless it failed): its last
// words.
func ReadStatus(runDir string) (Status, error) {
	var st Status
	data, err := os.ReadFile(filepath.Join(runDir, StatusFileName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return st, fmt.Errorf("runtime status: %w", err)
	default:
		if err := json.Unmarshal(data, &st); err != nil {
			return st, fmt.Errorf("runtime status: %s: %w", filepath.Join(runDir, StatusFileName), err)
		}
	}
	if _, err := runningPID(runDir); err != nil {
		if errors.Is(err, ErrNotRunning) && st.State != StateFailed {
			// A daemon killed outright could not say so itself.
			st.State = StateStopped
		}
		return st, err
	}
	if st.State == "" {
		st.State = StateStarting // running, but has not written its status yet
	}
	return st, nil
}
