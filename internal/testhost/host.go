//go:build linux

package testhost

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opengravity/gravity/internal/atomicfile"
)

// Host is one test host: a PID 1 of its own in its own namespaces.
type Host struct {
	Name string
	IP   netip.Addr

	netns    string
	stateDir string
	cfg      initConfig

	mu   sync.Mutex
	pid  int
	done chan struct{} // closed when an init this process started was reaped
}

// cowDirs are given copy-on-write views. On a merged-/usr system /bin, /sbin
// and /lib are symlinks into /usr; where they are real directories they get
// their own view too, so nothing installed in a host reaches the machine.
var cowDirs = []string{"/usr", "/etc", "/root", "/opt", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

// AddHost starts a host named name (also its hostname) with the next free
// address of the subnet.
func (n *Network) AddHost(ctx context.Context, name string) (*Host, error) {
	if !hostRE.MatchString(name) {
		return nil, fmt.Errorf("host name %q: want [a-z0-9-], at most 32 characters", name)
	}
	n.mu.Lock()
	ip, idx := n.next, len(n.hosts)+1
	for _, h := range n.hosts {
		if h.Name == name {
			n.mu.Unlock()
			return nil, fmt.Errorf("host %s exists", name)
		}
	}
	if !n.subnet.Contains(ip) || idx > 999 || ip == lastAddr(n.subnet) {
		n.mu.Unlock()
		return nil, fmt.Errorf("no address left in %s", n.subnet)
	}
	n.next = ip.Next()
	h := &Host{Name: name, IP: ip, netns: n.opts.Prefix + "-" + name,
		stateDir: filepath.Join(n.stateDir, name)}
	n.hosts = append(n.hosts, h)
	n.mu.Unlock()

	h.cfg = initConfig{Hostname: name, IP: ip.String(), StateDir: h.stateDir, COW: existingDirs(cowDirs)}
	if err := n.setupHost(ctx, h, fmt.Sprintf("%s-v%d", n.opts.Prefix, idx)); err != nil {
		return nil, fmt.Errorf("host %s: %w", name, err)
	}
	return h, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := (uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func existingDirs(dirs []string) []string {
	var out []string
	for _, d := range dirs {
		if fi, err := os.Lstat(d); err == nil && fi.IsDir() {
			out = append(out, d)
		}
	}
	return out
}

// setupHost: the named netns comes first so that a reboot's new init can
// join the same network; the veth arrives after the init disabled IPv6.
func (n *Network) setupHost(ctx context.Context, h *Host, veth string) error {
	if err := os.MkdirAll(h.stateDir, 0o755); err != nil {
		return err
	}
	if _, err := run(ctx, "ip", "netns", "add", h.netns); err != nil {
		return err
	}
	if err := h.startInit(ctx); err != nil {
		return err
	}
	cidr := netip.PrefixFrom(h.IP, n.subnet.Bits()).String()
	cmds := [][]string{
		{"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.netns},
		{"link", "set", veth, "master", n.bridge(), "up"},
		{"-n", h.netns, "addr", "add", cidr, "dev", "eth0"},
		{"-n", h.netns, "link", "set", "eth0", "up"},
		{"-n", h.netns, "link", "set", "lo", "up"},
	}
	if n.opts.DefaultRoute {
		cmds = append(cmds, []string{"-n", h.netns, "route", "add", "default", "via", n.bridgeIP.String()})
	}
	for _, c := range cmds {
		if _, err := run(ctx, "ip", c...); err != nil {
			return err
		}
	}
	return nil
}

// startInit starts the host's PID 1 inside its network namespace and waits
// until it has built the host's mounts.
func (h *Host) startInit(ctx context.Context) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary to run as init: %w", err)
	}
	cfg, err := json.Marshal(h.cfg)
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(h.stateDir, "init.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	rd, wr, err := os.Pipe()
	if err != nil {
		return err
	}
	defer rd.Close()
	cmd := &exec.Cmd{
		Path: exe, Args: []string{initArg0, h.netns},
		Env:    []string{initEnv + "=" + string(cfg), "PATH=" + defaultPath},
		Stdout: logf, Stderr: logf, ExtraFiles: []*os.File{wr},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true,
			Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC},
	}
	err = startInNetns(filepath.Join("/run/netns", h.netns), cmd)
	wr.Close()
	if err != nil {
		return fmt.Errorf("start init: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	h.mu.Lock()
	h.pid, h.done = cmd.Process.Pid, done
	h.mu.Unlock()
	return waitReady(ctx, rd, cmd.Process, filepath.Join(h.stateDir, "init.log"))
}

// waitReady reads the init's one-line report; the init closes the pipe by
// exiting if it failed.
func waitReady(ctx context.Context, rd *os.File, p *os.Process, logPath string) error {
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(rd).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case s := <-line:
		if s == "ok" {
			return nil
		}
		_ = p.Kill()
		if s == "" {
			s = "init exited without a report (see " + logPath + ")"
		}
		return fmt.Errorf("init: %s", s)
	case <-ctx.Done():
		_ = p.Kill()
		return fmt.Errorf("waiting for init: %w", ctx.Err())
	}
}

// startInNetns starts cmd from an OS thread switched into the network
// namespace at nsPath: a child inherits its creating thread's namespaces.
func startInNetns(nsPath string, cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread stays locked, and so dies with this goroutine, unless it
		// is back in its own namespace.
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := setns(nsPath); err != nil {
			errc <- err
			return
		}
		errc <- cmd.Start()
		if err := setnsFd(orig); err == nil {
			runtime.UnlockOSThread()
		}
	}()
	return <-errc
}

func setns(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return setnsFd(f)
}

func setnsFd(f *os.File) error {
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns %s: %w", f.Name(), err)
	}
	return nil
}

// defaultPath is the PATH of commands in a host: a fresh machine's, not the
// caller's.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Command prepares name with args to run inside the host as if on a
// separate machine: in / with a minimal environment (append to cmd.Env to
// add). Cancelling ctx kills the whole command, not just nsenter.
func (h *Host) Command(ctx context.Context, name string, arg ...string) *exec.Cmd {
	args := append([]string{"--target", strconv.Itoa(h.PID()), "--mount", "--uts", "--ipc", "--net", "--pid", "--", name}, arg...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Env = []string{"PATH=" + defaultPath, "HOME=/root", "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cancelInside(cmd.Process.Pid) }
	// Backstop: os/exec kills nsenter itself if it outlives its command.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// cancelInside kills the command nsenter forked into the host, and what it
// started in the process group nsenter leads, but not nsenter: orphans of
// nsenter go to the real machine's init (nsenter's PID namespace), which may
// take seconds to reap them, and the host's PID namespace waits for that.
// nsenter exits on its own, with its command's signal.
func cancelInside(nsenter int) error {
	pids, err := groupMembers(nsenter)
	if err != nil || len(pids) == 0 {
		return errors.Join(err, syscall.Kill(nsenter, syscall.SIGKILL))
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill %d: %w", pid, err)
		}
	}
	return nil
}

// Run runs a command in the host and returns its output; the error carries
// stderr.
func (h *Host) Run(ctx context.Context, name string, arg ...string) (stdout, stderr string, err error) {
	cmd := h.Command(ctx, name, arg...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		return o.String(), e.String(), fmt.Errorf("on %s: %s %s: %w: %s", h.Name, name,
			strings.Join(arg, " "), err, strings.TrimSpace(e.String()))
	}
	return o.String(), e.String(), nil
}

// PID is the host's init as seen from the real machine.
func (h *Host) PID() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pid
}

// Path is where the host's path p is seen from the real machine (through its
// init's root), e.g. to copy a binary into its /usr/local/bin or read its
// /var/log. Valid while the host runs.
func (h *Host) Path(p string) string {
	return filepath.Join("/proc", strconv.Itoa(h.PID()), "root", p)
}

// CopyIn copies src, a file or a directory tree of the real machine, to
// dst in the host's own filesystem, as scp -r would onto a node: the host
// then reads its own copy, not the real machine's path (its /tmp, for one,
// is private). dst's parent must exist in the host; each file appears
// whole or not at all. Modes are kept; symbolic links are copied as links.
func (h *Host) CopyIn(src, dst string) error {
	root := h.Path(dst)
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(root, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(target, info.Mode().Perm())
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			return copyFile(path, target, info.Mode().Perm())
		}
		return fmt.Errorf("%s is not a file, directory or link", path)
	})
	if err != nil {
		return fmt.Errorf("copy %s into %s:%s: %w", src, h.Name, dst, err)
	}
	return nil
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return atomicfile.Write(dst, mode, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// Reboot kills every process of the host and starts a fresh init: disks
// (/usr, /etc, /root, /opt views and /var) survive, /run and /tmp are empty
// again, the network stays as it was.
func (h *Host) Reboot(ctx context.Context) error {
	if err := killNetns(ctx, h.netns); err != nil {
		return fmt.Errorf("reboot %s: %w", h.Name, err)
	}
	h.waitInit()
	if err := h.startInit(ctx); err != nil {
		return fmt.Errorf("reboot %s: %w", h.Name, err)
	}
	return nil
}

// waitInit waits for the reaping of an init this process started.
func (h *Host) waitInit() {
	h.mu.Lock()
	done := h.done
	h.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

// LookupHost finds a running host of prefix by name, e.g. one that another
// process (the CLI's "up") started.
func LookupHost(ctx context.Context, prefix, name string) (*Host, error) {
	netns := prefix + "-" + name
	pids, err := initPIDs(prefix)
	if err != nil {
		return nil, err
	}
	pid, ok := pids[netns]
	if !ok {
		return nil, fmt.Errorf("no running host %s (no init for %s)", name, netns)
	}
	out, err := run(ctx, "ip", "-n", netns, "-4", "-o", "addr", "show", "dev", "eth0")
	if err != nil {
		return nil, err
	}
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "inet" {
			p, err := netip.ParsePrefix(f[i+1])
			if err != nil {
				return nil, fmt.Errorf("address of %s: %w", name, err)
			}
			return &Host{Name: name, IP: p.Addr(), netns: netns, pid: pid}, nil
		}
	}
	return nil, errors.New("host " + name + " has no IPv4 address on eth0")
}
