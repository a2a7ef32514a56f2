package node

import (
	"slices"
	"strings"
	"testing"
)

// hybridMountinfo is this machine's: cgroup v1 controllers plus the v2
// hierarchy at /sys/fs/cgroup/unified.
const hybridMountinfo = `22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
35 30 0:32 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
37 30 0:34 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

// v2Mountinfo is a unified host (systemd's default today), with optional
// fields before the separator.
const v2Mountinfo = `24 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`

func TestCgroupDirs(t *testing.T) {
	const root = "/gravity-192.0.2.10"
	tests := []struct {
		name, mountinfo string
		want            []string
		err             string
	}{
		{"hybrid", hybridMountinfo, []string{
			"/sys/fs/cgroup/cpu" + root, "/sys/fs/cgroup/cpuacct" + root, "/sys/fs/cgroup/cpuset" + root,
			"/sys/fs/cgroup/memory" + root, "/sys/fs/cgroup/devices" + root, "/sys/fs/cgroup/freezer" + root,
			"/sys/fs/cgroup/blkio" + root, "/sys/fs/cgroup/pids" + root, "/sys/fs/cgroup/systemd" + root,
			"/sys/fs/cgroup/unified" + root,
		}, ""},
		{"v2", v2Mountinfo, []string{"/sys/fs/cgroup" + root}, ""},
		{"escaped mount point", `50 30 0:40 / /mnt/my\040cgroups rw - cgroup2 cgroup2 rw` + "\n",
			[]string{"/mnt/my cgroups" + root}, ""},
		{"bind mounted twice", v2Mountinfo + strings.Replace(v2Mountinfo, "35 24", "36 24", 1), []string{"/sys/fs/cgroup" + root}, ""},
		{"no cgroups", "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n", []string{}, ""},
		{"malformed", "22 1 8:1 / / rw ext4 /dev/sda1 rw\n", nil, "line 1: malformed"},
		{"relative mount point", "50 30 0:40 / cg rw - cgroup2 cgroup2 rw\n", nil, "not absolute"},
		{"bad escape", `50 30 0:40 / /mnt/a\09x rw - cgroup2 cgroup2 rw` + "\n", nil, "bad escape"},
		{"truncated escape", `50 30 0:40 / /mnt/a\04 rw - cgroup2 cgroup2 rw` + "\n", nil, "truncated escape"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CgroupDirs(strings.NewReader(tt.mountinfo), root)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestCgroupDirsRoot(t *testing.T) {
	for _, root := range []string{"", "/", "gravity", "/a/../b"} {
		if _, err := CgroupDirs(strings.NewReader(v2Mountinfo), root); err == nil {
			t.Errorf("cgroup root %q: no error", root)
		}
	}
}

func FuzzCgroupDirs(f *testing.F) {
	f.Add(hybridMountinfo)
	f.Add(v2Mountinfo)
	f.Add(`50 30 0:40 / /mnt/my\040cgroups rw - cgroup2 cgroup2 rw`)
	f.Add("1 2 3 4 5 6 - cgroup")
	f.Fuzz(func(t *testing.T, mountinfo string) {
		dirs, err := CgroupDirs(strings.NewReader(mountinfo), "/gravity-x")
		if err != nil {
			return
		}
		for _, d := range dirs {
			// Whatever the mount points, the cgroup root stays below one.
			if !strings.HasPrefix(d, "/") || !strings.HasSuffix(d, "/gravity-x") {
				t.Fatalf("dir %q", d)
			}
		}
	})
}
