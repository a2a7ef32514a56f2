package preflight

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opengravity/gravity/internal/mountinfo"
)

// runOne runs the named check on a fixture host.
func runOne(t *testing.T, name string, h Host, req Requirements) Result {
	t.Helper()
	for _, c := range checks {
		if c.name == name {
			return c.run(context.Background(), newEnv(h, req))
		}
	}
	t.Fatalf("no check %q", name)
	return Result{}
}

func wantStatus(t *testing.T, r Result, st Status, substr string) {
	t.Helper()
	if r.Status != st || !strings.Contains(r.Message, substr) {
		t.Errorf("got %s %q, want %s containing %q", r.Status, r.Message, st, substr)
	}
}

func TestCheckOS(t *testing.T) {
	ubuntu := []OSRequirement{{Name: "ubuntu", Versions: []string{"20.04", "22.04"}}}
	tests := []struct {
		name   string
		extra  map[string]string
		os     []OSRequirement
		status Status
		substr string
	}{
		{"no requirement names distro", nil, nil, Pass, "ubuntu 22.04 (no OS requirement)"},
		{"supported", nil, ubuntu, Pass, "supported"},
		{"major matches minor", map[string]string{"/etc/os-release": "ID=rhel\nVERSION_ID=8.9\n"}, []OSRequirement{{Name: "RHEL", Versions: []string{"8"}}}, Pass, "supported"},
		{"any version", nil, []OSRequirement{{Name: "ubuntu"}}, Pass, "supported"},
		{"wrong version", map[string]string{"/etc/os-release": "ID=ubuntu\nVERSION_ID=18.04\n"}, ubuntu, Fail, "not supported"},
		{"prefix is not a version", map[string]string{"/etc/os-release": "ID=rhel\nVERSION_ID=80\n"}, []OSRequirement{{Name: "rhel", Versions: []string{"8"}}}, Fail, "supported: rhel 8"},
		{"wrong distro", map[string]string{"/etc/os-release": "ID=debian\nVERSION_ID=12\n"}, ubuntu, Fail, "ubuntu 20.04/22.04"},
		{"no os-release", map[string]string{"/etc/os-release": "<delete>"}, nil, Fail, "cannot identify"},
		{"old kernel", map[string]string{"/proc/sys/kernel/osrelease": "3.10.0-1160.el7\n"}, nil, Fail, "too old"},
		{"unreadable kernel", map[string]string{"/proc/sys/kernel/osrelease": "<delete>"}, nil, Warn, "kernel version"},
		{"garbled kernel", map[string]string{"/proc/sys/kernel/osrelease": "weird\n"}, nil, Warn, "unrecognised"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := Defaults("/var/lib/gravity")
			req.OS = tt.os
			wantStatus(t, runOne(t, "os", fixedHost(healthyRoot(t, tt.extra)), req), tt.status, tt.substr)
		})
	}
}

func TestCPUResult(t *testing.T) {
	tests := []struct {
		n, min, max int
		short       Status
		status      Status
	}{
		{4, 2, 0, Fail, Pass},
		{1, 2, 0, Warn, Warn},
		{1, 2, 0, Fail, Fail},
		{16, 2, 8, Warn, Fail}, // a max is always the app's own word
		{0, 0, 0, Warn, Fail},
		{8, 0, 8, Fail, Pass},
	}
	for _, tt := range tests {
		if r := cpuResult(tt.n, tt.min, tt.max, tt.short); r.Status != tt.status {
			t.Errorf("cpuResult(%d, %d, %d, %s) = %s %q, want %s", tt.n, tt.min, tt.max, tt.short, r.Status, r.Message, tt.status)
		}
	}
	req := Defaults("")
	wantStatus(t, runOne(t, "cpu", fixedHost(healthyRoot(t, nil)), req), Pass, "2 CPUs")
	req.MinCPU = 4
	wantStatus(t, runOne(t, "cpu", fixedHost(healthyRoot(t, nil)), req), Warn, "need at least 4")
	req.strict("cpu")
	wantStatus(t, runOne(t, "cpu", fixedHost(healthyRoot(t, nil)), req), Fail, "need at least 4")
}

func TestCheckRAM(t *testing.T) {
	tests := []struct {
		name    string
		meminfo string
		min     uint64
		max     uint64
		strict  bool
		status  Status
		substr  string
	}{
		{"enough", "MemTotal: 8000000 kB\n", 2 * GiB, 0, false, Pass, "7.6 GiB of RAM"},
		{"short default warns", "MemTotal: 1000000 kB\n", 2 * GiB, 0, false, Warn, "need at least 2.0 GiB"},
		{"short manifest fails", "MemTotal: 1000000 kB\n", 2 * GiB, 0, true, Fail, "add memory"},
		{"over max", "MemTotal: 80000000 kB\n", 0, 16 * GiB, true, Fail, "at most 16.0 GiB"},
		{"garbled", "MemTotal: lots\n", 0, 0, false, Fail, "cannot read memory size"},
		{"missing line", "MemFree: 1 kB\n", 0, 0, false, Fail, "no MemTotal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := Defaults("")
			req.MinRAM, req.MaxRAM = tt.min, tt.max
			if tt.strict {
				req.strict("ram")
			}
			h := fixedHost(healthyRoot(t, map[string]string{"/proc/meminfo": tt.meminfo}))
			wantStatus(t, runOne(t, "ram", h, req), tt.status, tt.substr)
		})
	}
}

func TestTimeResult(t *testing.T) {
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name          string
		now           time.Time
		synced, known bool
		status        Status
	}{
		{"synced", now, true, true, Pass},
		{"unsynced warns", now, false, true, Warn},
		{"unknown warns", now, false, false, Warn},
		{"clock in the past fails", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), true, true, Fail},
		{"epoch fails", time.Unix(0, 0), false, false, Fail},
	}
	for _, tt := range tests {
		if r := timeResult(tt.now, tt.synced, tt.known); r.Status != tt.status {
			t.Errorf("%s: got %s %q, want %s", tt.name, r.Status, r.Message, tt.status)
		}
	}
	root := healthyRoot(t, map[string]string{"/run/systemd/timesync/synchronized": ""})
	if synced, known := clockSynced(root); !synced || !known {
		t.Errorf("timesync flag file: synced=%v known=%v", synced, known)
	}
	if _, known := clockSynced(t.TempDir()); known {
		t.Error("fixture root without flag file claims to know sync state")
	}
}

func TestCheckCgroups(t *testing.T) {
	v1 := "30 22 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n" +
		"31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n" +
		"34 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
	procCgroups := "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t2\t1\t1\nmemory\t3\t1\t1\npids\t4\t1\t1\n"
	tests := []struct {
		name   string
		extra  map[string]string
		status Status
		substr string
	}{
		{"v2", nil, Pass, "cgroup v2"},
		{"v2 without pids", map[string]string{"/sys/fs/cgroup/cgroup.controllers": "cpu memory\n"}, Fail, "missing: pids"},
		{"v1", map[string]string{"/proc/self/mountinfo": v1, "/proc/cgroups": procCgroups}, Pass, "cgroup v1"},
		{"v1 memory disabled", map[string]string{"/proc/self/mountinfo": v1,
			"/proc/cgroups": strings.Replace(procCgroups, "memory\t3\t1\t1", "memory\t0\t1\t0", 1)}, Fail, "missing: memory"},
		{"hybrid", map[string]string{"/proc/self/mountinfo": v1 + "40 30 0:36 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
			"/proc/cgroups": procCgroups}, Pass, "hybrid"},
		{"none mounted", map[string]string{"/proc/self/mountinfo": "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"}, Fail, "no cgroup filesystem"},
		{"garbled mountinfo", map[string]string{"/proc/self/mountinfo": "nonsense\n"}, Fail, "cannot parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantStatus(t, runOne(t, "cgroups", fixedHost(healthyRoot(t, tt.extra)), Defaults("")), tt.status, tt.substr)
		})
	}
	if r := cgroupResult([]mountinfo.Entry{{FSType: "cgroup"}}, nil, nil); r.Status != Fail {
		t.Errorf("v1 mounted, no controllers: %s", r.Status)
	}
}

func TestDiskSpace(t *testing.T) {
	tests := []struct {
		name   string
		free   uint64
		strict bool
		status Status
	}{
		{"enough", 20 * GiB, false, Pass},
		{"short of default warns", 5 * GiB, false, Warn},
		{"short of manifest fails", 5 * GiB, true, Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := healthyRoot(t, nil)
			h := fixedHost(root)
			var asked string
			h.FreeBytes = func(p string) (uint64, error) { asked = p; return tt.free, nil }
			req := Defaults("/var/lib/gravity/state")
			if tt.strict {
				req.strict("disk-space")
			}
			wantStatus(t, runOne(t, "disk-space", h, req), tt.status, "/var/lib/gravity/state")
			// The state dir does not exist yet: measure its nearest ancestor, create nothing.
			if want := filepath.Join(root, "var/lib"); asked != want {
				t.Errorf("measured %s, want %s", asked, want)
			}
			if _, err := os.Stat(filepath.Join(root, "var/lib/gravity")); err == nil {
				t.Error("disk-space created the state dir")
			}
		})
	}
	t.Run("volumes are checked too", func(t *testing.T) {
		h := fixedHost(healthyRoot(t, nil))
		h.FreeBytes = func(string) (uint64, error) { return 20 * GiB, nil }
		req := Defaults("/var/lib/gravity")
		req.Volumes = []Volume{{Path: "/var/lib/data", MinCapacity: 50 * GiB}}
		wantStatus(t, runOne(t, "disk-space", h, req), Fail, "/var/lib/data: 20.0 GiB free, need 50.0 GiB")
	})
	t.Run("statfs error fails", func(t *testing.T) {
		h := fixedHost(healthyRoot(t, nil))
		h.FreeBytes = func(string) (uint64, error) { return 0, errors.New("boom") }
		wantStatus(t, runOne(t, "disk-space", h, Defaults("/var/lib/gravity")), Fail, "boom")
	})
	t.Run("state dir path is a file", func(t *testing.T) {
		h := fixedHost(healthyRoot(t, map[string]string{"/var/lib/gravity": "x"}))
		wantStatus(t, runOne(t, "disk-space", h, Defaults("/var/lib/gravity/x")), Fail, "not a directory")
	})
}

func TestDiskSpeed(t *testing.T) {
	tests := []struct {
		name   string
		rate   uint64
		strict bool
		status Status
	}{
		{"fast enough", 1, false, Pass},
		{"too slow for default warns", 1 << 50, false, Warn},
		{"too slow for manifest fails", 1 << 50, true, Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := healthyRoot(t, nil)
			before := snapshot(t, root)
			req := Defaults("/var/lib/gravity")
			req.MinWriteRate = tt.rate
			if tt.strict {
				req.strict("disk-speed")
			}
			wantStatus(t, runOne(t, "disk-speed", fixedHost(root), req), tt.status, "/var/lib/gravity: writes at")
			assertSameTree(t, before, snapshot(t, root))
		})
	}
	if r := speedVerdict(diskTarget{path: "/x", minRate: 10 * MiB}, 5*MiB); r.Status != Fail || !strings.Contains(r.Message, "faster storage") {
		t.Errorf("speedVerdict: %+v", r)
	}
}

func assertSameTree(t *testing.T, before, after map[string]string) {
	t.Helper()
	for p, v := range after {
		if before[p] != v {
			t.Errorf("changed or added: %s (%q -> %q)", p, before[p], v)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("removed: %s", p)
		}
	}
}

func TestCheckPorts(t *testing.T) {
	// pid 42 holds socket inode 777 listening on 0.0.0.0:6443 (0x192B).
	tcp := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 00000000:192B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0 100 0 0 10 0\n"
	root := healthyRoot(t, map[string]string{
		"/proc/net/tcp": tcp, "/proc/42/comm": "nginx\n", "/proc/42/fd/3": "->socket:[777]", "/proc/42/fd/1": "->/dev/null",
	})
	busy := func(port int) func(string, int) error {
		return func(_ string, p int) error {
			if p == port {
				return syscall.EADDRINUSE
			}
			return nil
		}
	}
	tests := []struct {
		name   string
		listen func(string, int) error
		status Status
		substr string
	}{
		{"all free", func(string, int) error { return nil }, Pass, "21 ports free"},
		{"busy names holder", busy(6443), Fail, "tcp/6443 (held by nginx, pid 42)"},
		{"busy, holder unknown", busy(2379), Fail, "ports in use: tcp/2379;"},
		{"no permission warns", func(string, int) error { return fmt.Errorf("listen: %w", syscall.EACCES) }, Warn, "without root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := fixedHost(root)
			h.Listen = tt.listen
			wantStatus(t, runOne(t, "ports", h, Defaults("")), tt.status, tt.substr)
		})
	}
	t.Run("real listener", func(t *testing.T) {
		l, err := net.Listen("tcp4", "0.0.0.0:0")
		if err != nil {
			t.Skip(err)
		}
		defer l.Close()
		port := l.Addr().(*net.TCPAddr).Port
		req := Requirements{Ports: []PortRange{{Protocol: "tcp", From: port, To: port}}}
		h := fixedHost(root)
		h.Listen = nil // the real one
		wantStatus(t, runOne(t, "ports", h, req), Fail, fmt.Sprintf("tcp/%d", port))
	})
}

func TestKernelModules(t *testing.T) {
	tests := []struct {
		name   string
		extra  map[string]string
		status Status
		substr string
	}{
		{"loaded, built in and in /sys/module", nil, Pass, "present"},
		{"missing names modprobe", map[string]string{"/proc/modules": "overlay 1 0 - Live 0\n"}, Fail, "modprobe -a br_netfilter veth"},
		{"dash and underscore are one", map[string]string{"/proc/modules": "overlay 1 0 - Live 0\nveth 1 0 - Live 0\n",
			"/lib/modules/5.15.0-91-generic/modules.builtin": "kernel/net/ip_tables.ko\nkernel/net/iptable_nat.ko\nkernel/net/bridge/br-netfilter.ko\n"}, Pass, "present"},
		{"monolithic kernel via config", map[string]string{"/proc/modules": "<delete>",
			"/lib/modules/5.15.0-91-generic/modules.builtin": "<delete>",
			"/boot/config-5.15.0-91-generic":                 "CONFIG_OVERLAY_FS=y\nCONFIG_BRIDGE_NETFILTER=y\nCONFIG_IP_NF_IPTABLES=y\nCONFIG_IP_NF_NAT=y\nCONFIG_VETH=y\n"}, Pass, "present"},
		{"module config is not built in", map[string]string{"/proc/modules": "<delete>",
			"/lib/modules/5.15.0-91-generic/modules.builtin": "<delete>",
			"/boot/config-5.15.0-91-generic":                 "CONFIG_OVERLAY_FS=m\nCONFIG_BRIDGE_NETFILTER=y\nCONFIG_IP_NF_IPTABLES=y\nCONFIG_IP_NF_NAT=y\nCONFIG_VETH=y\n"}, Fail, "not loaded: overlay;"},
		{"no source warns", map[string]string{"/proc/modules": "<delete>", "/lib/modules/5.15.0-91-generic/modules.builtin": "<delete>"}, Warn, "cannot tell"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantStatus(t, runOne(t, "kernel-modules", fixedHost(healthyRoot(t, tt.extra)), Defaults("")), tt.status, tt.substr)
		})
	}
}

func TestTools(t *testing.T) {
	root := healthyRoot(t, nil)
	wantStatus(t, runOne(t, "tools", fixedHost(root), Defaults("")), Pass, "iptables-restore")
	os.Remove(filepath.Join(root, "usr/sbin/iptables-save"))
	os.Chmod(filepath.Join(root, "usr/bin/umount"), 0o644) // not executable
	wantStatus(t, runOne(t, "tools", fixedHost(root), Defaults("")), Fail, "not found on PATH: iptables-save, umount")
	h := fixedHost(root)
	h.Path = "relative/dir:/nonexistent"
	wantStatus(t, runOne(t, "tools", h, Defaults("")), Fail, "iptables, iptables-save")
}

func TestConflictingSoftware(t *testing.T) {
	tests := []struct {
		name   string
		extra  map[string]string
		status Status
		substr string
	}{
		{"nothing running", nil, Pass, "no conflicting"},
		{"docker running", map[string]string{"/proc/300/comm": "dockerd\n", "/proc/300/exe": "->/usr/bin/dockerd"}, Fail, "dockerd (pid 300)"},
		{"ours ignored", map[string]string{"/proc/77/comm": "kubelet\n", "/proc/77/exe": "->/usr/lib/gravity/0.1.0/bin/kubelet"}, Pass, "no conflicting"},
		{"ours after upgrade ignored", map[string]string{"/proc/77/comm": "etcd\n", "/proc/77/exe": "->/usr/lib/gravity/0.1.0/bin/etcd (deleted)"}, Pass, "no conflicting"},
		{"another version of ours ignored", map[string]string{"/proc/77/comm": "etcd\n", "/proc/77/exe": "->/usr/lib/gravity/0.1.1/bin/etcd"}, Pass, "no conflicting"},
		{"lookalike dir is not ours", map[string]string{"/proc/77/comm": "etcd\n", "/proc/77/exe": "->/usr/lib/gravityx/etcd"}, Fail, "etcd (pid 77)"},
		{"unreadable exe is not ours", map[string]string{"/proc/9/comm": "k3s-server\n"}, Fail, "k3s-server (pid 9)"},
		{"similar name is fine", map[string]string{"/proc/9/comm": "containerd-shim\n"}, Pass, "no conflicting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantStatus(t, runOne(t, "conflicting-software", fixedHost(healthyRoot(t, tt.extra)), Defaults("")), tt.status, tt.substr)
		})
	}
}

// /proc/net/route as a host with a default route, and as an isolated one
// with its link and its pod routes only, writes it.
const (
	routesDefault = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n" +
		"eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
	routesIsolated = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"eth0\t0000EC0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
		"eth0\t0000F40A\t0200EC0A\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
)

func TestRoutes(t *testing.T) {
	service := netip.MustParsePrefix("10.100.0.0/16")
	tests := []struct {
		name   string
		table  string
		status Status
	}{
		{"a default route", routesDefault, Pass},
		{"no default route", routesIsolated, Warn},
		{"a route to the service network", routesIsolated + "eth0\t0000640A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n", Pass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			routes, err := parseRoutes(tt.table)
			if err != nil {
				t.Fatal(err)
			}
			if r := routesResult(routes, service); r.Status != tt.status {
				t.Errorf("%s: %s", r.Status, r.Message)
			}
		})
	}
	routes, _ := parseRoutes(routesIsolated)
	if want := []netip.Prefix{netip.MustParsePrefix("10.236.0.0/24"), netip.MustParsePrefix("10.244.0.0/24")}; !slices.Equal(routes, want) {
		t.Errorf("parsed %v, want %v", routes, want)
	}
	for _, bad := range []string{"", "eth0 0 0", "Iface\neth0\tZZ\t0\t0\t0\t0\t0\t00FFFFFF\n", "Iface\neth0\t0000000A\t0\t0\t0\t0\t0\t00FF00FF\n"} {
		if _, err := parseRoutes(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
