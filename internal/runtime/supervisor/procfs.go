package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procRoot is where /proc is mounted.
const procRoot = "/proc"

// procStat is the part of /proc/<pid>/stat the supervisor needs.
type procStat struct {
	State byte   // 'R', 'S', 'Z', …
	PGID  int    // process group
	SID   int    // session
	Start uint64 // start time in clock ticks since boot; with the pid, unique
}

// parseStat parses /proc/<pid>/stat. The command name (field 2) may contain
// spaces and parentheses, so fields are counted from the last ')'.
func parseStat(data []byte) (procStat, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, errors.New("stat: no command name")
	}
	f := strings.Fields(string(data[i+1:]))
	// f[0] is field 3 (state); start time is field 22.
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("stat: %d fields after the command name", len(f))
	}
	pgid, err := strconv.Atoi(f[2])
	if err != nil {
		return procStat{}, fmt.Errorf("stat: pgrp: %w", err)
	}
	sid, err := strconv.Atoi(f[3])
	if err != nil {
		return procStat{}, fmt.Errorf("stat: session: %w", err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("stat: starttime: %w", err)
	}
	return procStat{State: f[0][0], PGID: pgid, SID: sid, Start: start}, nil
}

func readStat(pid int) (procStat, error) {
	data, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", procRoot, pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(data)
}

// alive tells whether pid is a live process; a zombie is dead, since on
// hosts whose PID 1 does not reap, orphans stay zombies forever.
func alive(pid int) bool {
	st, err := readStat(pid)
	return err == nil && st.State != 'Z' && st.State != 'X'
}

// pids lists the processes in /proc.
func pids() ([]int, error) {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var out []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			out = append(out, pid)
		}
	}
	return out, nil
}

// groupMembers returns the live processes of process group pgid.
func groupMembers(pgid int) []int {
	all, err := pids()
	if err != nil {
		return nil
	}
	var out []int
	for _, pid := range all {
		st, err := readStat(pid)
		if err == nil && st.PGID == pgid && st.State != 'Z' && st.State != 'X' {
			out = append(out, pid)
		}
	}
	return out
}

// withEnv returns the live processes whose environment holds kv exactly.
// Processes we may not read (another user's) are skipped: they are not ours.
func withEnv(kv string) []int {
	all, err := pids()
	if err != nil {
		return nil
	}
	want := []byte(kv)
	var out []int
	for _, pid := range all {
		data, err := os.ReadFile(fmt.Sprintf("%s/%d/environ", procRoot, pid))
		if err != nil || !alive(pid) {
			continue
		}
		for _, e := range bytes.Split(data, []byte{0}) {
			if bytes.Equal(e, want) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// argv0 returns the first word of pid's command line.
func argv0(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("%s/%d/cmdline", procRoot, pid))
	if err != nil {
		return ""
	}
	first, _, _ := bytes.Cut(data, []byte{0})
	return string(first)
}

// exePath returns the executable of pid, or its argv[0] when the link is
// unreadable.
func exePath(pid int) string {
	if p, err := os.Readlink(fmt.Sprintf("%s/%d/exe", procRoot, pid)); err == nil {
		return strings.TrimSuffix(p, " (deleted)")
	}
	return argv0(pid)
}
