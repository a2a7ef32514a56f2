package preflight

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// parseOSRelease reads os-release(5) KEY=value lines, unquoting values.
// Malformed lines are skipped, as systemd does.
func parseOSRelease(data string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			continue
		}
		out[k] = unquote(v)
	}
	return out
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		v = v[1 : len(v)-1]
	}
	return strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`, "\\`", "`").Replace(v)
}

// parseMemTotal returns MemTotal from /proc/meminfo, in bytes.
func parseMemTotal(data string) (uint64, error) {
	for _, line := range strings.Split(data, "\n") {
		rest, ok := strings.CutPrefix(line, "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, fmt.Errorf("meminfo: empty MemTotal")
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("meminfo: MemTotal: %w", err)
		}
		// The kernel always writes kB (KiB); be strict so a change is noticed.
		if len(f) > 1 && f[1] != "kB" {
			return 0, fmt.Errorf("meminfo: MemTotal unit %q, want kB", f[1])
		}
		if n > (1<<64-1)/1024 {
			return 0, fmt.Errorf("meminfo: MemTotal %d kB out of range", n)
		}
		return n * 1024, nil
	}
	return 0, fmt.Errorf("meminfo: no MemTotal line")
}

// countCPUs counts "processor" entries in /proc/cpuinfo: the CPUs the
// kernel brought up, which is what a kubelet will see.
func countCPUs(data string) int {
	n := 0
	for _, line := range strings.Split(data, "\n") {
		k, _, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "processor" {
			n++
		}
	}
	return n
}

// parseModules returns the module names in /proc/modules.
func parseModules(data string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(data, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			out[normModule(f[0])] = true
		}
	}
	return out
}

// parseBuiltin returns module names from modules.builtin, whose lines are
// paths such as kernel/fs/overlayfs/overlay.ko.
func parseBuiltin(data string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		out[normModule(strings.TrimSuffix(path.Base(line), ".ko"))] = true
	}
	return out
}

// normModule folds '-' to '_': the kernel treats them as the same in
// module names, and modules.builtin keeps the file's spelling.
func normModule(s string) string { return strings.ReplaceAll(s, "-", "_") }

// parseProcCgroups returns the v1 controllers /proc/cgroups lists as
// enabled and mounted on a hierarchy (hierarchy ID > 0).
func parseProcCgroups(data string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if f[1] != "0" && f[3] == "1" {
			out[f[0]] = true
		}
	}
	return out
}

// parseListeners returns the socket inodes of TCP listeners on port from
// /proc/net/tcp or tcp6 (local address is hex IP:hex port, state 0A).
func parseListeners(data string, port int) []string {
	var out []string
	for _, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err == nil && int(p) == port {
			out = append(out, f[9])
		}
	}
	return out
}

// parseVersionMajor returns the leading number of a kernel release
// such as "6.1.0-18-amd64".
func parseVersionMajor(release string) (int, error) {
	end := 0
	for end < len(release) && release[end] >= '0' && release[end] <= '9' {
		end++
	}
	if end == 0 || end > 6 {
		return 0, fmt.Errorf("unrecognised kernel release %q", release)
	}
	return strconv.Atoi(release[:end])
}

// parseKernelConfig reads CONFIG_X=value lines of a kernel .config.
func parseKernelConfig(data string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(data, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && strings.HasPrefix(k, "CONFIG_") {
			out[k] = v
		}
	}
	return out
}
