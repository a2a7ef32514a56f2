package supervisor

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// Daemonize re-executes the current binary with args as a daemon: in a new
// session (no controlling terminal, out of the caller's process group, so a
// Ctrl-C or a hangup of the caller does not reach it), stdin from /dev/null
// and stdout and stderr appended to logFile. It holds none of the caller's
// descriptors, so a caller reading our output through a pipe sees EOF once
// the caller itself exits. It returns the daemon's pid without waiting.
//
// The working directory is kept, because args may hold relative paths. The
// daemon stays the caller's child until the caller exits; a caller that
// lives on must reap it (syscall.Wait4) or leave a zombie when it ends.
func Daemonize(args []string, logFile string) (pid int, err error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("daemonize: finding own binary: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(logFile), 0o755); err != nil {
		return 0, fmt.Errorf("daemonize: %w", err)
	}
	out, err := OpenLog(logFile)
	if err != nil {
		return 0, fmt.Errorf("daemonize: opening log: %w", err)
	}
	defer out.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return 0, fmt.Errorf("daemonize: %w", err)
	}
	defer null.Close()
	cmd := exec.Command(exe, args...)
	cmd.Env = detachedEnv(os.Environ())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("daemonize: starting %s: %w", exe, err)
	}
	pid = cmd.Process.Pid
	if err := cmd.Process.Release(); err != nil {
		return pid, fmt.Errorf("daemonize: releasing pid %d: %w", pid, err)
	}
	return pid, nil
}

// detachedEnv is env without the supervisor's marker: a process a
// supervised one daemonizes (the node agent's runtime restart) is no
// leftover of it, and must not be killed as one when the supervisor
// starts that component again.
func detachedEnv(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, markerEnv+"=") })
}
