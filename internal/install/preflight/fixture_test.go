package preflight

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tree writes a fixture host under a temp root. A value starting with
// "->" makes a symlink to the rest (for /proc/PID/exe and fd entries).
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(content, "->"); ok {
			err = os.Symlink(target, full)
		} else {
			err = os.WriteFile(full, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// fixedHost is a Host on root that touches nothing real: no listening,
// a fixed clock and a fixed free-space figure.
func fixedHost(root string) Host {
	return Host{
		Root:        root,
		Now:         func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) },
		Path:        "/usr/bin:/usr/sbin",
		Listen:      func(string, int) error { return nil },
		FreeBytes:   func(string) (uint64, error) { return 100 * GiB, nil },
		ClockSynced: func() (bool, bool) { return true, true },
		WriteSize:   1 * MiB,
	}
}

// healthy is a fixture host that passes every default check.
func healthy() map[string]string {
	return map[string]string{
		"/etc/os-release":            "ID=ubuntu\nVERSION_ID=\"22.04\"\n",
		"/proc/sys/kernel/osrelease": "5.15.0-91-generic\n",
		"/proc/sys/kernel/hostname":  "node-1\n",
		"/proc/cpuinfo":              "processor\t: 0\nmodel name\t: x\n\nprocessor\t: 1\n",
		"/proc/meminfo":              "MemTotal:        8000000 kB\nMemFree: 1 kB\n",
		"/proc/modules":              "overlay 151552 0 - Live 0x0\nbr_netfilter 32768 0 - Live 0x0\nveth 1 0 - Live 0\n",
		"/lib/modules/5.15.0-91-generic/modules.builtin": "kernel/net/ipv4/netfilter/ip_tables.ko\nkernel/net/ipv4/netfilter/iptable_nat.ko\n",
		"/sys/module/nf_conntrack/refcnt":                "1\n",
		"/usr/sbin/iptables":                             "",
		"/usr/sbin/iptables-save":                        "",
		"/usr/sbin/iptables-restore":                     "",
		"/usr/bin/mount":                                 "",
		"/usr/bin/umount":                                "",
		"/proc/1/comm":                                   "systemd\n",
		"/proc/self/mountinfo":                           "25 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
		"/sys/fs/cgroup/cgroup.controllers":              "cpuset cpu io memory pids\n",
		"/var/lib/.keep":                                 "",
	}
}

// healthyRoot writes healthy() plus extra and makes the tools executable.
func healthyRoot(t *testing.T, extra map[string]string) string {
	t.Helper()
	files := healthy()
	for k, v := range extra {
		if v == "<delete>" {
			delete(files, k)
			continue
		}
		files[k] = v
	}
	root := tree(t, files)
	for _, p := range []string{"/usr/sbin/iptables", "/usr/sbin/iptables-save", "/usr/sbin/iptables-restore", "/usr/bin/mount", "/usr/bin/umount"} {
		os.Chmod(filepath.Join(root, p), 0o755)
	}
	return root
}

// snapshot records every path under root with its mode, size and mtime.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		out[p] = fi.Mode().String() + " " + fi.ModTime().String() + " " + strconv.FormatInt(fi.Size(), 10)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
