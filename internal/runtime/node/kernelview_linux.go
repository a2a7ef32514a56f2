package node

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// KubeletExecCommand is the hidden gravity subcommand that starts kubelet
// through ExecWithKernelView.
const KubeletExecCommand = "kubelet-exec"

// ExecWithKernelView runs argv (kubelet) with its own view of the kernel
// tunables kubelet insists on. kubelet either writes host-wide sysctls
// (vm.overcommit_memory, kernel.panic, …) or, with protectKernelDefaults,
// refuses to start unless they already hold its values. Neither may change
// the machine for other tenants, so kubelet gets a private mount namespace
// in which files with the expected values are bind-mounted over /proc/sys;
// the kernel's values stay as they are. Mounts under the rest of the tree
// keep their propagation, so volume mounts kubelet makes reach containerd.
// It replaces the calling process and returns only on error.
func ExecWithKernelView(dir string, tunables map[string]int, argv, env []string) error {
	if len(argv) == 0 {
		return fmt.Errorf("kubelet-exec: no command")
	}
	// The namespace belongs to this thread; exec from the same thread
	// carries it over to kubelet.
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("private mount namespace: %w", err)
	}
	// Private /proc: the bind mounts below must not show on the host.
	if err := unix.Mount("", "/proc", "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("making /proc private: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for key, want := range tunables {
		if err := overlayTunable(dir, key, want); err != nil {
			return err
		}
	}
	return syscall.Exec(argv[0], argv, env)
}

// overlayTunable shows want at /proc/sys/key when the kernel holds another
// value.
func overlayTunable(dir, key string, want int) error {
	target := filepath.Join("/proc/sys", key)
	cur, err := os.ReadFile(target)
	if err != nil {
		return fmt.Errorf("reading %s: %w", target, err)
	}
	if strings.TrimSpace(string(cur)) == strconv.Itoa(want) {
		return nil
	}
	file := filepath.Join(dir, strings.ReplaceAll(key, "/", "."))
	if err := os.WriteFile(file, []byte(strconv.Itoa(want)+"\n"), 0o444); err != nil {
		return err
	}
	if err := unix.Mount(file, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mounting %s over %s: %w", file, target, err)
	}
	return nil
}
