package supervisor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// PortInUseError reports a port a process needs that something else holds.
type PortInUseError struct {
	Process string
	Port    int
	PID     int    // owner, 0 if unknown
	Exe     string // owner's executable, if known
}

func (e *PortInUseError) Error() string {
	msg := fmt.Sprintf("%s: port %d is already in use", e.Process, e.Port)
	if e.PID > 0 {
		msg += fmt.Sprintf(" (by pid %d, %s)", e.PID, e.Exe)
	}
	return msg
}

// checkPorts binds each port on the wildcard address: on Linux that fails if
// anything listens on the port at any local address, which is exactly the
// conflict the process would hit.
func checkPorts(name string, ports []int) error {
	for _, port := range ports {
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err == nil {
			if err := ln.Close(); err != nil {
				return fmt.Errorf("%s: checking port %d: %w", name, port, err)
			}
			continue
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("%s: checking port %d: %w", name, port, err)
		}
		e := &PortInUseError{Process: name, Port: port}
		if pid := portOwner(port); pid > 0 {
			e.PID, e.Exe = pid, exePath(pid)
		}
		return e
	}
	return nil
}

// portOwner finds a process holding a listening socket on port, via the
// socket inodes in /proc/net/tcp{,6} and the fd links in /proc/<pid>/fd.
// It returns 0 if none is visible (another network namespace, no access).
func portOwner(port int) int {
	inodes := map[string]bool{}
	for _, f := range []string{"/net/tcp", "/net/tcp6"} {
		data, err := os.ReadFile(procRoot + f)
		if err != nil {
			continue
		}
		for _, ino := range listeningInodes(data, port) {
			inodes[fmt.Sprintf("socket:[%d]", ino)] = true
		}
	}
	if len(inodes) == 0 {
		return 0
	}
	all, err := pids()
	if err != nil {
		return 0
	}
	for _, pid := range all {
		dir := fmt.Sprintf("%s/%d/fd", procRoot, pid)
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if link, err := os.Readlink(dir + "/" + fd.Name()); err == nil && inodes[link] {
				return pid
			}
		}
	}
	return 0
}

// tcpListen is the kernel's TCP_LISTEN state as printed in /proc/net/tcp.
const tcpListen = "0A"

// listeningInodes parses /proc/net/tcp or tcp6 and returns the inodes of the
// sockets listening on port. Lines it cannot parse are skipped: the format is
// the kernel's, and a partial answer only weakens an error message.
func listeningInodes(data []byte, port int) []uint64 {
	var out []uint64
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode …
		if len(f) < 10 || f[3] != tcpListen {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil || int(p) != port {
			continue
		}
		ino, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil || ino == 0 {
			continue
		}
		out = append(out, ino)
	}
	return out
}
