//go:build linux

package testhost

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/opengravity/gravity/internal/mountinfo"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

// initEnv carries the init's configuration into the re-executed binary. Any
// binary importing this package can serve as a host's init, so tests need no
// extra helper program.
const initEnv = "GRAVITY_TESTHOST_INIT"

// initArg0 is argv[0] of every host init, so that Cleanup can find inits of a
// killed run even before their network namespace got its name.
const initArg0 = "testhost-init"

// overlaySuperMagic is statfs's f_type for overlayfs.
const overlaySuperMagic = 0x794c7630

// initConfig is what a host's init needs to build the host's view of the
// machine.
type initConfig struct {
	Hostname string   `json:"hostname"`
	IP       string   `json:"ip"`
	StateDir string   `json:"stateDir"`
	COW      []string `json:"cow"`
}

func init() {
	if cfg := os.Getenv(initEnv); cfg != "" {
		runInit(cfg)
	}
}

// runInit is the whole life of a host's PID 1: set up the host, report on
// fd 3, then reap orphans until killed.
func runInit(raw string) {
	report := os.NewFile(3, "ready")
	var cfg initConfig
	err := json.Unmarshal([]byte(raw), &cfg)
	if err == nil {
		err = setupHost(cfg)
	}
	if err != nil {
		fmt.Fprintf(report, "error: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintln(report, "ok")
	report.Close()
	os.Unsetenv(initEnv)
	reapForever()
}

// reapForever does PID 1's one duty: daemons started in the host are
// re-parented here and must not linger as zombies.
func reapForever() {
	// Like a real init, survive the signals a stray "kill 1" in the host
	// would send; only SIGKILL from the real machine ends a host.
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGCHLD)
	for {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
		<-sigs
	}
}

func setupHost(cfg initConfig) error {
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	steps := []struct {
		what string
		fn   func(initConfig) error
	}{
		{"disable IPv6", disableIPv6},
		{"copy-on-write views", mountCOW},
		{"machine identity files", writeEtc},
		{"/var", mountVar},
		{"private /run, /tmp, /dev/shm", mountTmpfs},
		{"/proc", mountProc},
		{"/sys", mountSys},
	}
	for _, s := range steps {
		if err := s.fn(cfg); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
	}
	if err := syscall.Sethostname([]byte(cfg.Hostname)); err != nil {
		return fmt.Errorf("set hostname: %w", err)
	}
	return os.Chdir("/")
}

// disableIPv6 keeps link-local IPv6 (router solicitations, a path around the
// IPv4 egress rule) off the host's interfaces; eth0 is added later and
// inherits "default".
func disableIPv6(initConfig) error {
	for _, p := range []string{"all", "default"} {
		f := "/proc/sys/net/ipv6/conf/" + p + "/disable_ipv6"
		if err := os.WriteFile(f, []byte("1"), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

func mountCOW(cfg initConfig) error {
	for _, dir := range cfg.COW {
		base := filepath.Join(cfg.StateDir, "cow", strings.Trim(dir, "/"))
		upper, work := filepath.Join(base, "upper"), filepath.Join(base, "work")
		for _, d := range []string{upper, work} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", dir, upper, work)
		if err := syscall.Mount("overlay", dir, "overlay", 0, opts); err != nil {
			return fmt.Errorf("overlay on %s (%s): %w", dir, opts, err)
		}
	}
	return nil
}

// writeEtc gives the host the files that make it a different machine: its
// name, an empty resolver list (air-gapped: nothing may reach the real
// host's upstream DNS) and a machine-id of its own.
func writeEtc(cfg initConfig) error {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	files := map[string]string{
		"/etc/resolv.conf": "# gravity test host: air-gapped, no DNS upstream.\n",
		"/etc/hostname":    cfg.Hostname + "\n",
		"/etc/hosts":       fmt.Sprintf("127.0.0.1\tlocalhost\n%s\t%s\n", cfg.IP, cfg.Hostname),
		"/etc/machine-id":  hex.EncodeToString(id) + "\n",
	}
	for name, content := range files {
		// resolv.conf is often a symlink into /run; replace it, not its target.
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func mountVar(cfg initConfig) error {
	dir := filepath.Join(cfg.StateDir, "var")
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := populateVar(dir); err != nil {
			return err
		}
	}
	if err := syscall.Mount(dir, "/var", "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on /var: %w", dir, err)
	}
	return nil
}

// populateVar lays out what a fresh Debian /var has that programs rely on.
func populateVar(dir string) error {
	for _, d := range []string{"lib", "log", "cache", "spool", "opt", "local", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o777|os.ModeSticky); err != nil {
		return err
	}
	for name, target := range map[string]string{"run": "/run", "lock": "/run/lock"} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

func mountTmpfs(initConfig) error {
	// The copied mount table holds the real host's /run/netns entries; they
	// pin other hosts' network namespaces, so drop them rather than hide them.
	if err := detachMounts(func(m mountinfo.Entry) bool {
		return m.FSType == "nsfs" || under(m.Point, "/run") || under(m.Point, "/tmp")
	}); err != nil {
		return err
	}
	for _, m := range []struct{ dir, mode string }{{"/run", "755"}, {"/tmp", "1777"}, {"/dev/shm", "1777"}} {
		opts := "mode=" + m.mode
		if err := syscall.Mount("tmpfs", m.dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, opts); err != nil {
			return fmt.Errorf("tmpfs on %s: %w", m.dir, err)
		}
	}
	if err := os.Mkdir("/run/lock", 0o755); err != nil {
		return err
	}
	return os.Chmod("/run/lock", 0o777|os.ModeSticky)
}

func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// detachMounts lazily unmounts, deepest first, every mount that match selects.
func detachMounts(match func(mountinfo.Entry) bool) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	entries, err := mountinfo.Parse(string(data))
	if err != nil {
		return err
	}
	for i := len(entries) - 1; i >= 0; i-- {
		if !match(entries[i]) {
			continue
		}
		// EINVAL: already gone with a parent detached before it.
		err := syscall.Unmount(entries[i].Point, syscall.MNT_DETACH)
		if err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("unmount %s: %w", entries[i].Point, err)
		}
	}
	return nil
}

func mountProc(initConfig) error {
	if err := syscall.Unmount("/proc", syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount the real host's /proc: %w", err)
	}
	flags := uintptr(syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC)
	return syscall.Mount("proc", "/proc", "proc", flags, "")
}

// mountSys replaces /sys with a sysfs of the host's network namespace (so
// /sys/class/net lists its own interfaces), keeping the cgroup hierarchy that
// kubelet and containerd need.
func mountSys(cfg initConfig) error {
	tmp := filepath.Join(cfg.StateDir, "mnt", "sys")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	flags := uintptr(syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC)
	if err := syscall.Mount("sysfs", tmp, "sysfs", flags, ""); err != nil {
		return fmt.Errorf("mount sysfs: %w", err)
	}
	if _, err := os.Stat("/sys/fs/cgroup"); err == nil {
		err := syscall.Mount("/sys/fs/cgroup", filepath.Join(tmp, "fs", "cgroup"), "", syscall.MS_BIND|syscall.MS_REC, "")
		if err != nil {
			return fmt.Errorf("bind cgroups: %w", err)
		}
	}
	if err := syscall.Unmount("/sys", syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount the real host's /sys: %w", err)
	}
	if err := syscall.Mount(tmp, "/sys", "", syscall.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move sysfs to /sys: %w", err)
	}
	return nil
}
