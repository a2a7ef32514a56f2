package node

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/opengravity/gravity/internal/mountinfo"
)

// CgroupDirs are the directories of cgroupRoot in every cgroup hierarchy
// mountinfo (the format of /proc/self/mountinfo) shows mounted: one per v1
// controller hierarchy (cpu, memory, name=systemd, ...) and one per v2
// mount, so a hybrid host (v1 controllers plus /sys/fs/cgroup/unified)
// gets both. kubelet refuses to start unless its cgroup root exists in
// each hierarchy it uses.
func CgroupDirs(mountinfo io.Reader, cgroupRoot string) ([]string, error) {
	if !filepath.IsAbs(cgroupRoot) || filepath.Clean(cgroupRoot) != cgroupRoot || cgroupRoot == "/" {
		return nil, fmt.Errorf("cgroup root %q: want a clean absolute path other than /", cgroupRoot)
	}
	mounts, err := cgroupMounts(mountinfo)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(mounts))
	for _, m := range mounts {
		if d := filepath.Join(m, cgroupRoot); !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out, nil
}

// cgroupMounts returns the mount points of cgroup and cgroup2 filesystems.
func cgroupMounts(r io.Reader) ([]string, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	entries, err := mountinfo.Parse(string(data))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.FSType != "cgroup" && e.FSType != "cgroup2" {
			continue
		}
		if !filepath.IsAbs(e.Point) {
			return nil, fmt.Errorf("mountinfo: mount point %q is not absolute", e.Point)
		}
		out = append(out, filepath.Clean(e.Point))
	}
	return out, nil
}

// RemoveCgroups deletes the cgroup root of a node and everything kubelet
// made under it, in every hierarchy, once the node's processes are gone
// (leaving a node, or tearing down a test host on a shared kernel).
func RemoveCgroups(mountinfo io.Reader, cgroupRoot string) error {
	dirs, err := CgroupDirs(mountinfo, cgroupRoot)
	if err != nil {
		return err
	}
	var errs []error
	for _, dir := range dirs {
		errs = append(errs, removeCgroupTree(dir))
	}
	return errors.Join(errs...)
}

// removeCgroupTree removes dir and its children, deepest first: a cgroup
// directory goes with rmdir only once it has no children and no tasks.
func removeCgroupTree(dir string) error {
	var tree []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err == nil && d.IsDir() {
			tree = append(tree, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	for i := len(tree) - 1; i >= 0; i-- {
		if err := removeCgroup(tree[i]); err != nil {
			return fmt.Errorf("removing cgroup %s: %w", tree[i], err)
		}
	}
	return nil
}

// cgroupBusyWait bounds the wait for a killed cgroup's last tasks: a
// SIGKILLed process stays a member until it is reaped.
const cgroupBusyWait = 10 * time.Second

func removeCgroup(dir string) error {
	deadline := time.Now().Add(cgroupBusyWait)
	for {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
