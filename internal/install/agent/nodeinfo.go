package agent

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/opengravity/gravity/internal/version"
)

// LocalNodeInfo describes this node for the agent's hello.
func LocalNodeInfo(advertiseIP, role string) (NodeInfo, error) {
	host, err := os.Hostname()
	if err != nil {
		return NodeInfo{}, fmt.Errorf("node info: hostname: %w", err)
	}
	mem, err := memTotal("/proc/meminfo")
	if err != nil {
		return NodeInfo{}, fmt.Errorf("node info: %w", err)
	}
	return NodeInfo{
		Hostname:    host,
		AdvertiseIP: advertiseIP,
		Role:        role,
		// A missing os-release only costs a description, not the install.
		OS:          osName("/etc/os-release"),
		CPUs:        runtime.NumCPU(),
		MemoryBytes: mem,
		Version:     version.Version,
	}, nil
}

// memTotal reads MemTotal, which /proc/meminfo gives in KiB.
func memTotal(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("read memory size: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "MemTotal:" {
			continue
		}
		kib, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse MemTotal in %s: %w", path, err)
		}
		return kib * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return 0, fmt.Errorf("no MemTotal in %s", path)
}

// osName returns PRETTY_NAME, falling back to ID and VERSION_ID.
func osName(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return runtime.GOOS
	}
	vals := make(map[string]string)
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, `'`)
		}
		vals[k] = v
	}
	if n := vals["PRETTY_NAME"]; n != "" {
		return n
	}
	if id := vals["ID"]; id != "" {
		return strings.TrimSpace(id + " " + vals["VERSION_ID"])
	}
	return runtime.GOOS
}
