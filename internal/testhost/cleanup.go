//go:build linux

package testhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Cleanup removes every process, network namespace, link and iptables rule
// named with prefix, whether a Network's Close or a killed run left them.
// Names of other prefixes are never touched: a prefix has no "-", and all
// names are "<prefix>-...".
func Cleanup(ctx context.Context, prefix string) error {
	if !prefixRE.MatchString(prefix) {
		return fmt.Errorf("prefix %q: want 1-8 characters of [a-z0-9]", prefix)
	}
	// All inits at once: each takes its PID namespace down in parallel.
	errs := []error{killInits(ctx, prefix)}
	nss, err := netnsNames(prefix)
	errs = append(errs, err)
	for _, ns := range nss {
		errs = append(errs, killNetns(ctx, ns))
	}
	for _, ns := range nss {
		if _, err := run(ctx, "ip", "netns", "delete", ns); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, deleteLinks(ctx, prefix), deleteRules(ctx, prefix))
	return errors.Join(errs...)
}

// netnsDir is where iproute2 names network namespaces.
const netnsDir = "/run/netns"

func netnsNames(prefix string) ([]string, error) {
	ents, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list network namespaces: %w", err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix+"-") {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// killNetns kills every process in the named network namespace and waits
// until they are gone. The host's init goes first and takes its whole PID
// namespace along; killing it together with an nsenter whose command lives
// inside delays the namespace's end by seconds.
func killNetns(ctx context.Context, ns string) error {
	prefix, _, _ := strings.Cut(ns, "-")
	inits, err := initPIDs(prefix)
	if err != nil {
		return err
	}
	if pid, ok := inits[ns]; ok {
		if err := killAndWait(ctx, []int{pid}); err != nil {
			return err
		}
	}
	out, err := run(ctx, "ip", "netns", "pids", ns)
	if err != nil {
		return err
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return fmt.Errorf("ip netns pids %s: bad pid %q", ns, f)
		}
		pids = append(pids, pid)
	}
	return killAndWait(ctx, pids)
}

// killInits finds inits by their command line, which also finds one whose
// run was killed before it joined its network namespace.
func killInits(ctx context.Context, prefix string) error {
	pids, err := initPIDs(prefix)
	if err != nil {
		return err
	}
	var list []int
	for _, pid := range pids {
		list = append(list, pid)
	}
	return killAndWait(ctx, list)
}

// initPIDs maps netns name to the pid of the live init that serves it.
func initPIDs(prefix string) (map[string]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue // exited meanwhile
		}
		args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
		if len(args) == 2 && string(args[0]) == initArg0 && bytes.HasPrefix(args[1], []byte(prefix+"-")) {
			out[string(args[1])] = pid
		}
	}
	return out, nil
}

func killAndWait(ctx context.Context, pids []int) error {
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill %d: %w", pid, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, pid := range pids {
		for alive(pid) {
			select {
			case <-ctx.Done():
				return fmt.Errorf("process %d survives SIGKILL: %w", pid, ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return nil
}

// alive: a zombie is dead enough once all its threads are gone; the
// namespaces of a multi-threaded init are released only with its last thread.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z' {
		return true
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	return err == nil && len(tasks) > 1
}

// groupMembers lists the processes of process group pgid but its leader.
func groupMembers(pgid int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == pgid {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		// After "(comm)": state, ppid, pgrp.
		i := bytes.LastIndexByte(stat, ')')
		if f := strings.Fields(string(stat[i+1:])); i >= 0 && len(f) >= 3 && f[2] == strconv.Itoa(pgid) {
			out = append(out, pid)
		}
	}
	return out, nil
}

func deleteLinks(ctx context.Context, prefix string) error {
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	var errs []error
	for _, ifc := range ifs {
		if !strings.HasPrefix(ifc.Name, prefix+"-") {
			continue
		}
		// A veth may vanish with its namespace while we look.
		if _, err := run(ctx, "ip", "link", "delete", ifc.Name); err != nil && linkExists(ifc.Name) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// Leftovers lists what of prefix's hosts is still on the machine: network
// namespaces, links, iptables rules, mounts and init processes. Empty once
// Cleanup (or Network.Close) has run.
func Leftovers(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	ns, err := run(ctx, "ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	links, err := run(ctx, "ip", "-o", "link", "show")
	if err != nil {
		return nil, err
	}
	rules := ""
	if haveIPTables() {
		if rules, err = run(ctx, "iptables-save"); err != nil {
			return nil, err
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	for _, src := range []struct{ what, text, needle string }{
		{"netns", ns, prefix + "-"},
		{"link", links, " " + prefix + "-"},
		{"rule", rules, "--comment " + prefix + " "},
		{"mount", string(mounts), prefix + "-"},
		{"mount", string(mounts), "/" + prefix + "/"},
	} {
		for _, line := range strings.Split(src.text, "\n") {
			if strings.Contains(line, src.needle) {
				out = append(out, src.what+": "+line)
			}
		}
	}
	pids, err := initPIDs(prefix)
	if err != nil {
		return nil, err
	}
	for ns, pid := range pids {
		out = append(out, fmt.Sprintf("process: init %d of %s", pid, ns))
	}
	return out, nil
}
