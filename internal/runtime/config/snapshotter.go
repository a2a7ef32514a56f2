package config

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Filesystem magic numbers (statfs f_type) that overlayfs cannot use as the
// upper directory.
const (
	overlayMagic = 0x794c7630
	nfsMagic     = 0x6969
)

// DetectSnapshotter says which containerd snapshotter works for stateDir
// and why: overlayfs, unless the kernel lacks it or stateDir is itself on a
// filesystem overlayfs cannot put its upper directory on (overlayfs, as in
// a container or on some VMs, or NFS). The reason is for the log.
func DetectSnapshotter(stateDir string) (name, reason string) {
	return detectSnapshotter(stateDir, statfsType, "/proc/filesystems", modulesDep())
}

// modulesDep is the running kernel's module list: overlay may be a module
// that is not loaded yet, which the first overlay mount loads.
func modulesDep() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return ""
	}
	var rel []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		rel = append(rel, byte(c))
	}
	return filepath.Join("/lib/modules", string(rel), "modules.dep")
}

func detectSnapshotter(stateDir string, fsType func(string) (int64, error), filesystems, modules string) (string, string) {
	ok, err := kernelHasOverlay(filesystems, modules)
	switch {
	case err != nil:
		return SnapshotterNative, fmt.Sprintf("cannot tell whether the kernel has overlayfs (%v): using native", err)
	case !ok:
		return SnapshotterNative, "the kernel has no overlayfs: using native"
	}
	dir, err := existingAncestor(stateDir)
	if err != nil {
		return SnapshotterNative, fmt.Sprintf("%s: %v: using native", stateDir, err)
	}
	t, err := fsType(dir)
	if err != nil {
		return SnapshotterNative, fmt.Sprintf("statfs %s: %v: using native", dir, err)
	}
	switch t {
	case overlayMagic:
		return SnapshotterNative, fmt.Sprintf("%s is on overlayfs, which cannot hold overlayfs upper directories: using native (slower, more disk)", dir)
	case nfsMagic:
		return SnapshotterNative, fmt.Sprintf("%s is on NFS, which cannot hold overlayfs upper directories: using native (slower, more disk)", dir)
	}
	return SnapshotterOverlay, fmt.Sprintf("%s supports overlayfs", dir)
}

func statfsType(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Type), nil //nolint:unconvert // Type is int32 on some platforms
}

// existingAncestor is the deepest existing directory on the way to dir: the
// state directory may not exist before the first start, and its files will
// be on the filesystem of whatever holds it.
func existingAncestor(dir string) (string, error) {
	dir = filepath.Clean(dir)
	for {
		_, err := os.Stat(dir)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", err
		}
		dir = parent
	}
}

func kernelHasOverlay(filesystems, modules string) (bool, error) {
	ok, err := listsOverlay(filesystems, func(fields []string) bool {
		return len(fields) > 0 && fields[len(fields)-1] == "overlay"
	})
	if ok || err != nil || modules == "" {
		return ok, err
	}
	ok, err = listsOverlay(modules, func(fields []string) bool {
		return len(fields) > 0 && strings.HasSuffix(fields[0], "/overlay.ko:") ||
			len(fields) > 0 && strings.Contains(fields[0], "/overlay.ko.")
	})
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return ok, err
}

// listsOverlay reports whether any line of file matches.
func listsOverlay(file string, match func(fields []string) bool) (bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if match(strings.Fields(sc.Text())) {
			return true, nil
		}
	}
	return false, sc.Err()
}
