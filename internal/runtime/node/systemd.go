package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opengravity/gravity/internal/runtime/config"
)

// The runtime's systemd unit, used instead of a detached daemon on a host
// whose init is systemd.
const (
	UnitName = "gravity-runtime.service"
	// UnitPath is where the unit is installed: /etc, so it is the
	// administrator's copy and outranks any packaged unit of that name.
	UnitPath = "/etc/systemd/system/" + UnitName
	// systemdRunDir exists only while systemd is PID 1 (sd_booted(3)).
	systemdRunDir = "/run/systemd/system"
)

// Exec runs a command and returns its combined output; a Service calls
// systemctl only through it, so tests record the calls instead.
type Exec func(ctx context.Context, name string, args ...string) ([]byte, error)

// Service starts and stops the runtime through systemd. Root is "/" on a
// real host and a scratch directory in tests: the unit and the systemd
// marker directory are looked up under it.
type Service struct {
	Root string
	Exec Exec
}

// HostService is the Service of this host.
func HostService() Service { return Service{Root: "/", Exec: execCommand} }

func execCommand(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// Systemd tells whether systemd is the init, by sd_booted(3)'s rule: the
// directory /run/systemd/system exists. A systemd binary installed but not
// running (containers, these test hosts) does not count.
func (s Service) Systemd() bool {
	fi, err := os.Stat(filepath.Join(s.Root, systemdRunDir))
	return err == nil && fi.IsDir()
}

// Installed tells whether the unit file is there.
func (s Service) Installed() bool {
	_, err := os.Stat(s.unitFile())
	return err == nil
}

func (s Service) unitFile() string { return filepath.Join(s.Root, UnitPath) }

func (s Service) systemctl(ctx context.Context, args ...string) ([]byte, error) {
	out, err := s.Exec(ctx, "systemctl", args...)
	if err != nil {
		return out, fmt.Errorf("node runtime: %w", err)
	}
	return out, nil
}

// Start installs the unit that runs exe with the node config at
// configPath (both absolute) and has systemd start it, now and at every
// boot. systemctl returns once the runtime reports itself ready
// (Type=notify) or has failed. Starting again is a no-op unless the unit
// changed; a runtime already running, under another unit text or outside
// systemd, is refused as the daemon path refuses a second daemon.
func (s Service) Start(ctx context.Context, exe, configPath, runDir string) error {
	text, err := Unit(exe, configPath)
	if err != nil {
		return err
	}
	changed, err := s.unitChanged(text)
	if err != nil {
		return err
	}
	if err := s.checkRunning(ctx, runDir, changed); err != nil {
		return err
	}
	if changed {
		if err := s.install(ctx, text); err != nil {
			return err
		}
	}
	_, err = s.systemctl(ctx, "enable", "--now", UnitName)
	return err
}

// unitChanged tells whether the installed unit differs from text.
func (s Service) unitChanged(text string) (bool, error) {
	old, err := os.ReadFile(s.unitFile())
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("node runtime: %w", err)
	}
	return string(old) != text, nil
}

// checkRunning refuses to start over a runtime that systemd did not start
// (it holds the run directory, so the unit's would fail and restart
// forever), or over our unit's runtime when the unit changed (enable
// --now would leave it running the old command line).
func (s Service) checkRunning(ctx context.Context, runDir string, changed bool) error {
	pid, err := runningPID(runDir)
	if errors.Is(err, ErrNotRunning) {
		return nil
	}
	if err != nil {
		return err
	}
	main, err := s.MainPID(ctx)
	if err != nil {
		return err
	}
	if main != pid {
		return fmt.Errorf("node runtime: already running outside systemd (pid %d); stop it first (gravity runtime stop)", pid)
	}
	if changed {
		return fmt.Errorf("node runtime: running (pid %d) from a different %s; stop it first (gravity runtime stop)", pid, UnitName)
	}
	return nil
}

// MainPID is the pid systemd knows as the unit's main process, 0 when the
// unit is not installed or not running.
func (s Service) MainPID(ctx context.Context) (int, error) {
	if !s.Installed() {
		return 0, nil
	}
	out, err := s.systemctl(ctx, "show", "--property=MainPID", "--value", UnitName)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return 0, fmt.Errorf("node runtime: systemctl show MainPID: %q: %w", out, err)
	}
	return pid, nil
}

// install replaces the unit file atomically (a crash leaves the old unit
// or the new, never half of one) and has systemd read it again.
func (s Service) install(ctx context.Context, text string) error {
	if err := config.Write(s.Root, map[string][]byte{UnitPath: []byte(text)}, 0o644); err != nil {
		return fmt.Errorf("node runtime: installing the unit: %w", err)
	}
	_, err := s.systemctl(ctx, "daemon-reload")
	return err
}

// Stop stops the unit's runtime and returns once it has exited. It does
// nothing when the unit is not installed, and leaves the unit enabled: the
// runtime comes back at the next boot, as a node should.
func (s Service) Stop(ctx context.Context) error {
	if !s.Installed() {
		return nil
	}
	_, err := s.systemctl(ctx, "stop", UnitName)
	return err
}

// Uninstall disables the unit and removes its file, so that nothing of the
// runtime starts at the next boot; with no systemd running, only the file
// goes. A unit that is not there is not an error. Stop the runtime first.
func (s Service) Uninstall(ctx context.Context) error {
	if !s.Installed() {
		return nil
	}
	if s.Systemd() {
		if _, err := s.systemctl(ctx, "disable", UnitName); err != nil {
			return err
		}
	}
	if err := os.Remove(s.unitFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("node runtime: removing the unit: %w", err)
	}
	if s.Systemd() {
		_, err := s.systemctl(ctx, "daemon-reload")
		return err
	}
	return nil
}

// StopRuntime stops the runtime of runDir and waits until it has exited:
// on a systemd host the unit first, then, on any host, a daemon still
// holding runDir (started before the unit was, or in the foreground). It
// returns ErrNotRunning when nothing was running.
func (s Service) StopRuntime(ctx context.Context, runDir string) error {
	if !s.Systemd() {
		return Stop(ctx, runDir)
	}
	_, err := runningPID(runDir)
	wasRunning := err == nil
	if err := s.Stop(ctx); err != nil {
		return err
	}
	err = Stop(ctx, runDir)
	if errors.Is(err, ErrNotRunning) && wasRunning {
		return nil // systemd stopped it
	}
	return err
}
