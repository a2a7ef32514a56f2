package preflight

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Host is where the checks look. Every file the checks read is read under
// Root, so tests point Root at a fixture tree; the function fields cover
// what is not a file and default to the real host when nil.
type Host struct {
	Root string // "/" on a real host
	Now  func() time.Time
	// Path is the PATH searched for tools; empty means $PATH plus the sbin
	// directories, which a non-login root shell often lacks.
	Path string
	// Listen tries to bind proto ("tcp"/"udp") port on all addresses and
	// closes at once; nil error means the port is free.
	Listen func(proto string, port int) error
	// FreeBytes returns the bytes an unprivileged writer may use on the
	// filesystem holding path (a path on the real host, already under Root).
	FreeBytes func(path string) (uint64, error)
	// ClockSynced says whether the kernel clock is synchronized; known is
	// false when it cannot tell.
	ClockSynced func() (synced, known bool)
	// WriteSize is how much disk-speed writes; 0 means 32 MiB.
	WriteSize int64
}

type env struct {
	host Host
	req  Requirements
}

func newEnv(h Host, req Requirements) *env {
	if h.Root == "" {
		h.Root = "/"
	}
	if h.Now == nil {
		h.Now = time.Now
	}
	if h.Path == "" {
		h.Path = os.Getenv("PATH") + ":/usr/local/sbin:/usr/sbin:/sbin"
	}
	if h.Listen == nil {
		h.Listen = listen
	}
	if h.FreeBytes == nil {
		h.FreeBytes = freeBytes
	}
	if h.ClockSynced == nil {
		h.ClockSynced = func() (bool, bool) { return clockSynced(h.Root) }
	}
	if h.WriteSize <= 0 {
		h.WriteSize = 32 * MiB
	}
	return &env{host: h, req: req}
}

// path maps an absolute host path to where it is under Root.
func (e *env) path(p string) string { return filepath.Join(e.host.Root, p) }

func (e *env) read(p string) (string, error) {
	b, err := os.ReadFile(e.path(p))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return string(b), nil
}

func (e *env) exists(p string) bool {
	_, err := os.Stat(e.path(p))
	return err == nil
}

func (e *env) advisory(check string) bool {
	for _, a := range e.req.Advisory {
		if a == check {
			return true
		}
	}
	return false
}

// shortfall is the status for missing a threshold: warn when the
// threshold is only a built-in guess (see Requirements.Advisory).
func (e *env) shortfall(check string) Status {
	if e.advisory(check) {
		return Warn
	}
	return Fail
}

func (e *env) nodeName() string {
	if s, err := e.read("/proc/sys/kernel/hostname"); err == nil && strings.TrimSpace(s) != "" {
		return strings.TrimSpace(s)
	}
	if e.host.Root == "/" {
		if n, err := os.Hostname(); err == nil {
			return n
		}
	}
	return ""
}

// kernelRelease is `uname -r`, read from procfs so fixtures can set it.
func (e *env) kernelRelease() (string, error) {
	s, err := e.read("/proc/sys/kernel/osrelease")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(s), nil
}

func listen(proto string, port int) error {
	addr := fmt.Sprintf("0.0.0.0:%d", port)
	if proto == "udp" {
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

func freeBytes(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// clockSynced asks systemd-timesyncd's flag file first, then the kernel.
// The flag's absence proves nothing (chrony and ntpd do not write it).
func clockSynced(root string) (synced, known bool) {
	if _, err := os.Stat(filepath.Join(root, "/run/systemd/timesync/synchronized")); err == nil {
		return true, true
	}
	if root != "/" {
		return false, false
	}
	var tx syscall.Timex
	state, err := syscall.Adjtimex(&tx)
	if err != nil {
		return false, false
	}
	const staUnsync, timeError = 0x40, 5
	return state != timeError && tx.Status&staUnsync == 0, true
}

// nearestExisting walks up from p (a path under Root) to the first
// directory that exists, so checks can measure where the state dir will
// be without creating it.
func nearestExisting(p string) (string, error) {
	p = filepath.Clean(p)
	for {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return "", fmt.Errorf("%s exists and is not a directory", p)
			}
			return p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("stat %s: %w", p, err)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", fmt.Errorf("no existing ancestor of %s", p)
		}
		p = parent
	}
}
