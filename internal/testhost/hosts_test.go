//go:build linux

package testhost

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Subnets of this package's tests; other packages' end-to-end tests use
// other ones, so they can run at the same time.
const (
	testSubnet   = "10.231.250.0/24"
	killedSubnet = "10.231.251.0/24"
	probeAddr    = "192.0.2.1" // TEST-NET-1: dropped at the bridge, never sent
)

func requireHosts(t *testing.T) {
	t.Helper()
	if os.Getenv("GRAVITY_TEST_HOSTS") != "1" {
		t.Skip("set GRAVITY_TEST_HOSTS=1 to run test hosts (needs root, iproute2, util-linux, iptables)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("GRAVITY_TEST_HOSTS=1 but not root")
	}
}

func newTestNetwork(t *testing.T, prefix string, hosts ...string) (*Network, []*Host) {
	t.Helper()
	ctx := t.Context()
	n, err := NewNetwork(ctx, Options{Prefix: prefix, Subnet: testSubnet, DefaultRoute: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	var hs []*Host
	for _, name := range hosts {
		h, err := n.AddHost(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	return n, hs
}

func mustRun(t *testing.T, h *Host, script string) string {
	t.Helper()
	out, _, err := h.Run(t.Context(), "sh", "-c", script)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func TestHosts(t *testing.T) {
	requireHosts(t)
	n, hs := newTestNetwork(t, "gth", "alpha", "beta")
	a, b := hs[0], hs[1]

	t.Run("identity", func(t *testing.T) {
		for _, h := range hs {
			if got := mustRun(t, h, "uname -n"); got != h.Name {
				t.Errorf("hostname of %s = %q", h.Name, got)
			}
			if got := mustRun(t, h, "tr '\\0' ' ' </proc/1/cmdline"); got != initArg0+" gth-"+h.Name {
				t.Errorf("PID 1 of %s is %q", h.Name, got)
			}
			if got := mustRun(t, h, "pwd"); got != "/" {
				t.Errorf("commands start in %q", got)
			}
		}
		if a.IP == b.IP || !n.Subnet().Contains(a.IP) || !n.Subnet().Contains(b.IP) {
			t.Errorf("addresses %s, %s not distinct in %s", a.IP, b.IP, n.Subnet())
		}
		ma, mb := mustRun(t, a, "cat /etc/machine-id"), mustRun(t, b, "cat /etc/machine-id")
		if ma == mb {
			t.Errorf("hosts share machine-id %s", ma)
		}
	})
	t.Run("own process table", func(t *testing.T) {
		// Only PID 1 and the shell: nothing of the real machine.
		got := mustRun(t, a, "set -- /proc/[0-9]*; echo $#")
		if got != "2" {
			t.Errorf("host sees %s processes, want 2:\n%s", got, mustRun(t, a, "ls /proc"))
		}
	})
	t.Run("init reaps orphans", func(t *testing.T) {
		mustRun(t, a, "sleep 0.1 & exit 0") // the sleep's parent is gone at once
		time.Sleep(500 * time.Millisecond)
		if got := mustRun(t, a, "grep -l '^State:.*Z' /proc/[0-9]*/status || true"); got != "" {
			t.Errorf("zombies: %s", got)
		}
	})
	t.Run("cancel kills the command inside", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cmd := a.Command(ctx, "sleep", "1000")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		cancel()
		if err := cmd.Wait(); err == nil {
			t.Fatal("cancelled command succeeded")
		}
		// The kill is asynchronous: give the kernel and init a moment.
		got, start := "", time.Now()
		for time.Since(start) < 2*time.Second && got != "2" {
			time.Sleep(20 * time.Millisecond)
			got = mustRun(t, a, "set -- /proc/[0-9]*; echo $#")
		}
		if got != "2" {
			t.Errorf("%s processes left in the host, want 2 (init and this shell):\n%s", got,
				mustRun(t, a, "cut -d' ' -f1-4 /proc/[0-9]*/stat"))
		}
	})
	t.Run("copy-on-write /usr and /etc", func(t *testing.T) { testCOW(t, a, b) })
	t.Run("private /run /tmp and real /var", func(t *testing.T) { testPrivateDirs(t, a, b) })
	t.Run("copy in", func(t *testing.T) { testCopyIn(t, a) })
	t.Run("no DNS upstream", func(t *testing.T) {
		if got := mustRun(t, a, "grep -c nameserver /etc/resolv.conf || true"); got != "0" {
			t.Errorf("resolv.conf names %s upstreams", got)
		}
	})
	t.Run("own interfaces", func(t *testing.T) {
		if got := mustRun(t, a, "ls /sys/class/net | tr '\\n' ' '"); got != "eth0 lo" {
			t.Errorf("/sys/class/net = %q", got)
		}
	})
	t.Run("subnet in use", func(t *testing.T) {
		_, err := NewNetwork(t.Context(), Options{Prefix: "gto", Subnet: testSubnet})
		if err == nil || !strings.Contains(err.Error(), "overlaps") {
			t.Errorf("second network on %s: %v", testSubnet, err)
		}
	})
	t.Run("tcp between hosts", func(t *testing.T) { testTCP(t, a, b) })
	t.Run("egress is dropped and counted", func(t *testing.T) { testEgress(t, n, a, b) })
	t.Run("reboot", func(t *testing.T) { testReboot(t, b) })
	t.Run("teardown", func(t *testing.T) {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		if l := leftovers(t, "gth"); len(l) > 0 {
			t.Errorf("left after Close:\n%s", strings.Join(l, "\n"))
		}
		if _, err := os.Stat(filepath.Join(DefaultWorkDir, "gth")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("state dir left: %v", err)
		}
	})
}

func testCOW(t *testing.T, a, b *Host) {
	const probe = "/usr/bin/gravity-testhost-probe"
	mustRun(t, a, "echo inside >"+probe+" && echo x >>/etc/os-release")
	if _, err := os.Stat(probe); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s appeared on the real machine: %v", probe, err)
	}
	if got, err := os.ReadFile(a.Path(probe)); err != nil || string(got) != "inside\n" {
		t.Errorf("Path(%s) = %q, %v", probe, got, err)
	}
	if got := mustRun(t, b, "test -e "+probe+" && echo seen || echo absent"); got != "absent" {
		t.Errorf("other host: %s", got)
	}
	real, err := os.ReadFile("/etc/os-release")
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(string(real), "x\n") {
		t.Error("/etc/os-release changed on the real machine")
	}
}

// testCopyIn: a file under the real machine's /tmp, invisible in the host,
// copied into the host's own /root as scp would.
func testCopyIn(t *testing.T, a *Host) {
	src := filepath.Join(t.TempDir(), "cluster-image.tar")
	if err := os.WriteFile(src, []byte("image bytes\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if got := mustRun(t, a, "test -e "+src+" && echo seen || echo absent"); got != "absent" {
		t.Fatalf("%s is visible in the host: the test proves nothing", src)
	}
	if err := a.CopyIn(src, "/root/copied.tar"); err != nil {
		t.Fatal(err)
	}
	if got := mustRun(t, a, "cat /root/copied.tar; stat -c %a /root/copied.tar"); got != "image bytes\n640" {
		t.Errorf("in the host: %q", got)
	}
	if _, err := os.Stat("/root/copied.tar"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the copy landed on the real machine: %v", err)
	}
	if err := a.CopyIn(src, "/no/such/dir/x"); err == nil {
		t.Error("copy into a missing directory succeeded")
	}
	tree := filepath.Join(t.TempDir(), "charts")
	if err := os.MkdirAll(filepath.Join(tree, "alpine", "templates"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "alpine", "templates", "pod.yaml"), []byte("kind: Pod\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.CopyIn(tree, "/root/charts"); err != nil {
		t.Fatal(err)
	}
	if got := mustRun(t, a, "cat /root/charts/alpine/templates/pod.yaml"); got != "kind: Pod" {
		t.Errorf("copied tree: %q", got)
	}
}

func testPrivateDirs(t *testing.T, a, b *Host) {
	mustRun(t, a, "touch /run/a-was-here /tmp/a-was-here /var/lib/a-was-here")
	for _, p := range []string{"/run/a-was-here", "/tmp/a-was-here", "/var/lib/a-was-here"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s visible on the real machine", p)
		}
		if got := mustRun(t, b, "test -e "+p+" && echo seen || echo absent"); got != "absent" {
			t.Errorf("%s visible on the other host", p)
		}
	}
	if got := mustRun(t, a, "ls /run | tr '\\n' ' '"); got != "a-was-here lock" {
		t.Errorf("/run holds %q", got)
	}
	if got := mustRun(t, a, "stat -f -c %T /var"); got == "overlayfs" || got == "tmpfs" {
		t.Errorf("/var is on %s", got)
	}
}

// installHelper copies the test binary into the host, as a test would
// install gravity into /usr/bin.
func installHelper(t *testing.T, h *Host) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const dst = "/usr/local/bin/testhost-helper"
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.Path(dst), data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

func testTCP(t *testing.T, a, b *Host) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	addr := net.JoinHostPort(b.IP.String(), "7000")
	srv := b.Command(ctx, installHelper(t, b))
	srv.Env = append(srv.Env, helperEnv+"=listen "+addr)
	srv.Stderr = os.Stderr
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Wait()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "listening\n" {
		t.Fatalf("listener: %q, %v", line, err)
	}
	cli := a.Command(ctx, installHelper(t, a))
	cli.Env = append(cli.Env, helperEnv+"=dial "+addr)
	got, err := cli.CombinedOutput()
	if err != nil || string(got) != "echo from "+a.Name+"\n" {
		t.Errorf("dial %s from %s: %q, %v", addr, a.Name, got, err)
	}
}

func testEgress(t *testing.T, n *Network, a, b *Host) {
	ctx := t.Context()
	// Counters on the real machine's own paths out: they must stay at zero.
	for _, chain := range []string{"FORWARD", "POSTROUTING"} {
		if err := addRule(ctx, n.Prefix(), "mangle", chain, false, "-d", probeAddr); err != nil {
			t.Fatal(err)
		}
	}
	before, err := n.EgressDrops(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Run(ctx, "bash", "-c", "echo probe >/dev/udp/"+probeAddr+"/9"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Run(ctx, "timeout", "1", "bash", "-c", "exec 3<>/dev/tcp/"+probeAddr+"/80"); err == nil {
		t.Error("TCP connect to " + probeAddr + " succeeded")
	}
	after, err := n.EgressDrops(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 2 {
		t.Errorf("egress drops went from %d to %d, want at least 2 more (UDP + SYN)", before, after)
	}
	// Without a default route, nothing leaves at all and connects fail at once.
	mustRun(t, b, "ip route del default")
	start := time.Now()
	_, stderr, err := b.Run(ctx, "bash", "-c", "exec 3<>/dev/tcp/"+probeAddr+"/80")
	if err == nil || !strings.Contains(stderr, "unreachable") || time.Since(start) > 2*time.Second {
		t.Errorf("connect without a route: %v, %q after %s", err, stderr, time.Since(start))
	}
	if final, err := n.EgressDrops(ctx); err != nil || final != after {
		t.Errorf("egress drops %d after a routeless connect, want %d (%v)", final, after, err)
	}
	rules, err := rulesTagged(ctx, n.Prefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if r.Table == "mangle" && r.Packets != 0 {
			t.Errorf("the real machine sent %d packets to %s (%s)", r.Packets, probeAddr, r.Chain)
		}
	}
}

func testReboot(t *testing.T, h *Host) {
	mustRun(t, h, "touch /run/before /tmp/before /var/lib/before /usr/local/bin/before")
	sleeper := h.Command(t.Context(), "sleep", "1000")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	oldPID := h.PID()
	start := time.Now()
	if err := h.Reboot(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("reboot took %s", time.Since(start))
	if err := sleeper.Wait(); err == nil {
		t.Error("a process survived the reboot")
	}
	if h.PID() == oldPID {
		t.Error("init PID unchanged")
	}
	got := mustRun(t, h, "ls /run/before /tmp/before /var/lib/before /usr/local/bin/before 2>/dev/null; true")
	if got != "/usr/local/bin/before\n/var/lib/before" {
		t.Errorf("after reboot found %q, want only the disk files", got)
	}
	if got := mustRun(t, h, "ip -4 -o addr show dev eth0 | grep -c "+h.IP.String()); got != "1" {
		t.Error("eth0 lost its address")
	}
}

// leftovers lists every object of prefix still on the machine.
func leftovers(t *testing.T, prefix string) []string {
	t.Helper()
	out, err := Leftovers(t.Context(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestKilledRunIsCleanedUp(t *testing.T) {
	requireHosts(t)
	ctx := t.Context()
	// A bystander whose names start like ours but belong to another prefix.
	bystander := [][]string{
		{"ip", "netns", "add", "gtkx-h1"},
		{"ip", "link", "add", "gtkx-br", "type", "bridge"},
		{"iptables", "-w", "-t", "mangle", "-A", "OUTPUT", "-d", "192.0.2.2", "-m", "comment", "--comment", "gtkx"},
	}
	t.Cleanup(func() {
		if err := Cleanup(context.Background(), "gtkx"); err != nil {
			t.Error(err)
		}
	})
	for _, c := range bystander {
		if out, err := exec.CommandContext(ctx, c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", c, err, out)
		}
	}
	killRun(t, "gtk")
	if l := leftovers(t, "gtk"); len(l) == 0 {
		t.Fatal("the killed run left nothing: the test tests nothing")
	}
	if err := Cleanup(ctx, "gtk"); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(DefaultWorkDir, "gtk")); err != nil {
		t.Fatal(err)
	}
	if l := leftovers(t, "gtk"); len(l) > 0 {
		t.Errorf("left after Cleanup:\n%s", strings.Join(l, "\n"))
	}
	if got := len(leftovers(t, "gtkx")); got != 3 {
		t.Errorf("Cleanup(gtk) touched the bystander gtkx: %d of its 3 objects left", got)
	}
}

// killRun starts hosts in a child process and SIGKILLs it once they run.
func killRun(t *testing.T, prefix string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=up "+prefix+" "+killedSubnet)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("child run: %q, %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, out)
	_ = cmd.Wait()
}

func TestWorkDirOnOverlay(t *testing.T) {
	requireHosts(t)
	dir := t.TempDir()
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	merged := filepath.Join(dir, "merged")
	opts := fmt.Sprintf("lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work", dir, dir, dir)
	if err := syscall.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(merged, syscall.MNT_DETACH) })
	_, err := NewNetwork(t.Context(), Options{Prefix: "gtw", Subnet: killedSubnet, WorkDir: merged})
	if err == nil || !strings.Contains(err.Error(), "overlayfs") {
		t.Fatalf("work dir on overlay: %v", err)
	}
	if l := leftovers(t, "gtw"); len(l) > 0 {
		t.Errorf("left behind: %q", l)
	}
}
