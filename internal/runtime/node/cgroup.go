package node

import (
	"bufio"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
// A mountinfo line is
//
//	id parent major:minor root mountpoint options [optional...] - fstype source superoptions
func cgroupMounts(mountinfo io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(mountinfo)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		before, after, ok := strings.Cut(text, " - ")
		fields, tail := strings.Fields(before), strings.Fields(after)
		if !ok || len(fields) < 6 || len(tail) < 1 {
			return nil, fmt.Errorf("mountinfo line %d: malformed: %q", line, text)
		}
		if tail[0] != "cgroup" && tail[0] != "cgroup2" {
			continue
		}
		mp, err := unescapeMount(fields[4])
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", line, err)
		}
		if !filepath.IsAbs(mp) {
			return nil, fmt.Errorf("mountinfo line %d: mount point %q is not absolute", line, mp)
		}
		out = append(out, filepath.Clean(mp))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	return out, nil
}

// unescapeMount undoes the kernel's octal escapes (\040 for a space, \011,
// \012, \134) in mountinfo paths.
func unescapeMount(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) {
			return "", fmt.Errorf("mount point %q: truncated escape", s)
		}
		v, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", fmt.Errorf("mount point %q: bad escape: %w", s, err)
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}
