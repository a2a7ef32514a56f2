package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/opengravity/gravity/internal/mountinfo"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/runtime/podnet"
)

// Reset stops node n's runtime and removes what it left on the host: pod
// processes, mounts, cgroups, the pod bridge and routes, the iptables
// chains kube-proxy and CNI made, the systemd unit, and the runtime's data
// (with what components keep outside it: libcni's cache, kubelet's
// container log links). It is what a
// failed install rolls back to and what `gravity leave --force` does; it
// keeps going past errors and reports them all, so that one stuck mount
// does not leave the rest behind. The node's config and secrets are the
// bootstrap's to remove.
func Reset(ctx context.Context, n config.Node, log io.Writer) error {
	n, err := n.WithDefaults()
	if err != nil {
		return err
	}
	var errs []error
	svc := HostService()
	if svc.Systemd() && svc.Installed() {
		errs = append(errs, svc.StopRuntime(ctx, n.RunDir))
	} else if err := Stop(ctx, n.RunDir); err != nil && !errors.Is(err, ErrNotRunning) {
		errs = append(errs, err)
	}
	errs = append(errs, svc.Uninstall(ctx))
	errs = append(errs, killNodeProcesses(n))
	errs = append(errs, unmountUnder(mountRoots(n)))
	errs = append(errs, removeNodeCgroups(n))
	errs = append(errs, removeNetwork(n))
	errs = append(errs, resetIptables(ctx))
	p := n.Paths()
	for _, dir := range []string{p.EtcdData, filepath.Dir(p.ContainerdRoot), p.KubeletRoot,
		filepath.Dir(filepath.Dir(p.KubeletPlugins)), p.RegistryStorage, filepath.Dir(p.CNIConf), n.RunDir,
		config.HostCNICache, config.HostContainerLogs} {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	err = errors.Join(errs...)
	if err == nil {
		fmt.Fprintf(log, "node runtime removed from %s\n", n.IP)
	}
	return err
}

// mountRoots are the trees whose mounts belong to the node: its state and
// run dirs, and the network namespaces containerd pins under /run/netns.
func mountRoots(n config.Node) []string {
	return []string{n.StateDir, n.RunDir, "/run/netns", "/var/run/netns"}
}

// killNodeProcesses kills what outlives the supervisor: containerd's shims
// (they are meant to survive containerd) and every process in the node's
// pod cgroups.
func killNodeProcesses(n config.Node) error {
	pids, err := nodePIDs(n)
	if err != nil {
		return err
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// alive reports whether pid still runs: a zombie waiting for its parent
// to reap it is gone as far as its mounts and cgroups go.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command, which is in parentheses and may
	// hold spaces.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

func nodePIDs(n config.Node) ([]int, error) {
	var pids []int
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		cg, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if strings.HasPrefix(exe, n.BinDir+"/") || inCgroup(string(cg), n.CgroupRoot) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// inCgroup reports whether a /proc/PID/cgroup text puts the process under
// root in any hierarchy.
func inCgroup(procCgroup, root string) bool {
	for line := range strings.SplitSeq(procCgroup, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && (parts[2] == root || strings.HasPrefix(parts[2], root+"/")) {
			return true
		}
	}
	return false
}

// unmountUnder detaches every mount below roots, deepest first.
func unmountUnder(roots []string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	entries, err := mountinfo.Parse(string(data))
	if err != nil {
		return err
	}
	points := mountsUnder(entries, roots)
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// mountsUnder lists the mount points at or below roots, deepest first,
// each once.
func mountsUnder(entries []mountinfo.Entry, roots []string) []string {
	var out []string
	for _, e := range entries {
		for _, r := range roots {
			if within(e.Point, r) && !slices.Contains(out, e.Point) {
				out = append(out, e.Point)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return out
}

func removeNodeCgroups(n config.Node) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	return RemoveCgroups(bytes.NewReader(data), n.CgroupRoot)
}

// removeNetwork deletes the pod bridge (and with it the pods' veths) and
// the pod network agent's routes.
func removeNetwork(n config.Node) error {
	var errs []error
	if link, err := netlink.LinkByName(config.BridgeName); err == nil {
		errs = append(errs, netlink.LinkDel(link))
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: podnet.RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, r := range routes {
		errs = append(errs, netlink.RouteDel(&r))
	}
	return errors.Join(errs...)
}

// resetIptables removes the chains kube-proxy and the CNI plugins made and
// every rule jumping to them, table by table through iptables-save and
// iptables-restore, keeping everyone else's rules.
func resetIptables(ctx context.Context) error {
	var errs []error
	for _, table := range []string{"filter", "nat", "mangle", "raw"} {
		saved, err := exec.CommandContext(ctx, "iptables-save", "-t", table).Output()
		if err != nil {
			errs = append(errs, fmt.Errorf("iptables-save -t %s: %w", table, err))
			continue
		}
		kept, changed := withoutNodeRules(string(saved))
		if !changed {
			continue
		}
		cmd := exec.CommandContext(ctx, "iptables-restore")
		cmd.Stdin = strings.NewReader(kept)
		if out, err := cmd.CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("iptables-restore (%s): %w: %s", table, err, out))
		}
	}
	return errors.Join(errs...)
}

// nodeChainPrefixes name the chains kube-proxy, kubelet and the CNI
// plugins create.
var nodeChainPrefixes = []string{"KUBE-", "CNI-"}

// withoutNodeRules drops from an iptables-save text the node's chains and
// any rule that names one of them.
func withoutNodeRules(saved string) (string, bool) {
	var out strings.Builder
	changed := false
	sc := bufio.NewScanner(strings.NewReader(saved))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		drop := false
		for _, p := range nodeChainPrefixes {
			if strings.HasPrefix(line, ":"+p) || (strings.HasPrefix(line, "-A ") && strings.Contains(line, p)) {
				drop = true
			}
		}
		if drop {
			changed = true
			continue
		}
		out.WriteString(line + "\n")
	}
	return out.String(), changed
}
