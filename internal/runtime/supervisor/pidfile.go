package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// markerEnv is set in every supervised process's environment, and inherited
// by its children, to "<run dir>/<name>": it finds the remnants of a group
// whose leader is gone, and proves they are ours.
const markerEnv = "GRAVITY_SUPERVISED"

// pidRecord is the content of <RunDir>/<name>.pid. The start time and path
// guard against pid reuse: a pid alone may name someone else's process by now.
type pidRecord struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
	Path  string `json:"path"`
}

func parsePIDRecord(data []byte) (pidRecord, error) {
	var r pidRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return pidRecord{}, fmt.Errorf("decoding pid file: %w", err)
	}
	if r.PID <= 1 || r.Path == "" {
		return pidRecord{}, fmt.Errorf("pid file: bad record pid=%d path=%q", r.PID, r.Path)
	}
	return r, nil
}

// writePIDFile writes atomically so a crash never leaves half a record.
func writePIDFile(path string, r pidRecord) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding pid file: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing pid file: %w", err)
	}
	return nil
}

func readPIDFile(path string) (pidRecord, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return pidRecord{}, err
	}
	r, err := parsePIDRecord(data)
	if err != nil {
		return pidRecord{}, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// ours tells whether the live process r.PID is the one r recorded.
func (r pidRecord) ours() bool {
	st, err := readStat(r.PID)
	if err != nil || st.State == 'Z' || st.Start != r.Start {
		return false
	}
	return argv0(r.PID) == r.Path || exePath(r.PID) == r.Path
}

// cleanLeftovers kills what a previous supervisor left of process name: the
// group recorded in its PID file if the record still matches, and any process
// carrying the marker (orphans whose group leader already died).
func cleanLeftovers(log *slog.Logger, runDir, name string) error {
	pidPath := filepath.Join(runDir, name+".pid")
	var victims []int
	r, err := readPIDFile(pidPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		log.Warn("ignoring unreadable pid file", "process", name, "err", err)
	case r.ours():
		victims = append(victims, groupMembers(r.PID)...)
	default:
		log.Info("stale pid file: the process is gone or not ours", "process", name, "pid", r.PID)
	}
	victims = append(victims, withEnv(markerEnv+"="+marker(runDir, name))...)
	if len(victims) > 0 {
		log.Warn("killing leftovers of a previous supervisor", "process", name, "pids", victims)
	}
	for _, pid := range victims {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("%s: killing leftover pid %d: %w", name, pid, err)
		}
	}
	if err := waitGone(victims, 5*time.Second); err != nil {
		return fmt.Errorf("%s: leftovers of a previous supervisor: %w", name, err)
	}
	if err := os.Remove(pidPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: removing stale pid file: %w", name, err)
	}
	return nil
}

func marker(runDir, name string) string { return filepath.Join(runDir, name) }

// waitGone waits until none of pids is alive.
func waitGone(pids []int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var left []int
		for _, pid := range pids {
			if alive(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pids %v still alive after %v", left, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
