package preflight

import (
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// maxPortsPerRange bounds the work a huge manifest range can cause.
const maxPortsPerRange = 4096

func checkPorts(ctx context.Context, e *env) Result {
	var busy, untested []string
	n := 0
	for _, pr := range e.req.Ports {
		for p := pr.From; p <= pr.To && p-pr.From < maxPortsPerRange; p++ {
			if ctx.Err() != nil {
				return fail("port check interrupted: %v", ctx.Err())
			}
			n++
			err := e.host.Listen(pr.Protocol, p)
			switch {
			case err == nil:
			case errors.Is(err, syscall.EACCES):
				untested = append(untested, fmt.Sprintf("%s/%d", pr.Protocol, p))
			default:
				busy = append(busy, fmt.Sprintf("%s/%d%s", pr.Protocol, p, e.holder(pr.Protocol, p)))
			}
		}
	}
	return portResult(n, busy, untested)
}

func portResult(n int, busy, untested []string) Result {
	if len(busy) > 0 {
		return fail("ports in use: %s; stop what holds them before installing", strings.Join(busy, ", ")).with("busy", busy)
	}
	if len(untested) > 0 {
		return warn("cannot test ports %s without root; run install as root", strings.Join(untested, ", ")).with("untested", untested)
	}
	return pass("%d ports free", n)
}

// holder names the process listening on a TCP port, best effort: the
// socket inode from /proc/net/tcp{,6} matched against /proc/PID/fd.
func (e *env) holder(proto string, port int) string {
	if proto != "tcp" {
		return ""
	}
	var inodes []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if data, err := e.read(f); err == nil {
			inodes = append(inodes, parseListeners(data, port)...)
		}
	}
	if len(inodes) == 0 {
		return ""
	}
	for _, pid := range e.pids() {
		fds, _ := os.ReadDir(e.path("/proc/" + pid + "/fd"))
		for _, fd := range fds {
			target, err := os.Readlink(e.path("/proc/" + pid + "/fd/" + fd.Name()))
			if err == nil && slices.Contains(inodes, strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")) {
				return fmt.Sprintf(" (held by %s, pid %s)", e.comm(pid), pid)
			}
		}
	}
	return ""
}

// pids lists the numeric entries of /proc in numeric order.
func (e *env) pids() []string {
	ents, _ := os.ReadDir(e.path("/proc"))
	var out []int
	for _, d := range ents {
		if n, err := strconv.Atoi(d.Name()); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	s := make([]string, len(out))
	for i, n := range out {
		s[i] = strconv.Itoa(n)
	}
	return s
}

func (e *env) comm(pid string) string {
	s, err := e.read("/proc/" + pid + "/comm")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(s)
}

func checkKernelModules(_ context.Context, e *env) Result {
	have, known := e.moduleSources()
	var missing []string
	for _, m := range e.req.KernelModules {
		// /sys/module/NAME exists for loaded modules and for built-in
		// ones with parameters, so it covers kernels without modules.builtin.
		if !have[normModule(m)] && !e.exists("/sys/module/"+normModule(m)) {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 && !known {
		return warn("cannot tell whether kernel modules %s are present (no /proc/modules, modules.builtin or kernel config); if install fails, run `modprobe -a %s`",
			strings.Join(missing, ", "), strings.Join(missing, " ")).with("unknown", missing)
	}
	return moduleResult(e.req.KernelModules, missing)
}

// moduleSources gathers module names that are loaded or built in, from
// /proc/modules, modules.builtin and the kernel config; known is false
// when none of them could be read.
func (e *env) moduleSources() (have map[string]bool, known bool) {
	have = map[string]bool{}
	if data, err := e.read("/proc/modules"); err == nil {
		have, known = parseModules(data), true
	}
	rel, err := e.kernelRelease()
	if err != nil {
		return have, known
	}
	if data, err := e.read("/lib/modules/" + rel + "/modules.builtin"); err == nil {
		for m := range parseBuiltin(data) {
			have[m] = true
		}
		known = true
	}
	if cfg, err := e.kernelConfig(rel); err == nil {
		for m, sym := range moduleConfig {
			if cfg[sym] == "y" {
				have[m] = true
			}
		}
		known = true
	}
	return have, known
}

// moduleConfig maps the default modules to the kernel config symbol that
// builds them in: monolithic kernels (some VMs) have neither
// /proc/modules nor modules.builtin, only the config.
var moduleConfig = map[string]string{
	"overlay":      "CONFIG_OVERLAY_FS",
	"br_netfilter": "CONFIG_BRIDGE_NETFILTER",
	"ip_tables":    "CONFIG_IP_NF_IPTABLES",
	"iptable_nat":  "CONFIG_IP_NF_NAT",
	"nf_conntrack": "CONFIG_NF_CONNTRACK",
	"veth":         "CONFIG_VETH",
}

// kernelConfig reads /proc/config.gz or /boot/config-REL.
func (e *env) kernelConfig(rel string) (map[string]string, error) {
	if f, err := os.Open(e.path("/proc/config.gz")); err == nil {
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("read /proc/config.gz: %w", err)
		}
		data, err := io.ReadAll(io.LimitReader(zr, 16*MiB))
		if err != nil {
			return nil, fmt.Errorf("read /proc/config.gz: %w", err)
		}
		return parseKernelConfig(string(data)), nil
	}
	data, err := e.read("/boot/config-" + rel)
	if err != nil {
		return nil, err
	}
	return parseKernelConfig(data), nil
}

func moduleResult(want, missing []string) Result {
	if len(missing) > 0 {
		return fail("kernel modules not loaded: %s; load them with `modprobe -a %s` and add them to /etc/modules-load.d/",
			strings.Join(missing, ", "), strings.Join(missing, " ")).with("missing", missing)
	}
	return pass("kernel modules present: %s", strings.Join(want, ", "))
}

func checkTools(_ context.Context, e *env) Result {
	var missing []string
	for _, t := range e.req.Tools {
		if e.lookPath(t) == "" {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fail("tools not found on PATH: %s; install them (packages iptables and mount/util-linux)",
			strings.Join(missing, ", ")).with("missing", missing)
	}
	return pass("tools present: %s", strings.Join(e.req.Tools, ", "))
}

// lookPath is exec.LookPath under Root: the first executable regular
// file named name in a Path directory, or "".
func (e *env) lookPath(name string) string {
	for _, dir := range filepath.SplitList(e.host.Path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // relative PATH entries depend on the cwd; never trust them
		}
		p := filepath.Join(dir, name)
		fi, err := os.Stat(e.path(p))
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	return ""
}

func checkConflicting(_ context.Context, e *env) Result {
	var found []string
	for _, pid := range e.pids() {
		name := e.comm(pid)
		if !slices.Contains(e.req.Conflicting, name) || e.ours(pid) {
			continue
		}
		found = append(found, fmt.Sprintf("%s (pid %s)", name, pid))
	}
	if len(found) > 0 {
		return fail("other container or Kubernetes software is running: %s; stop and disable it (e.g. `systemctl disable --now docker containerd`) before installing",
			strings.Join(found, ", ")).with("processes", found)
	}
	return pass("no conflicting software running")
}

// ours reports whether the process runs a binary from the gravity bin
// dir, i.e. is a runtime a previous or current gravity started.
func (e *env) ours(pid string) bool {
	if e.req.GravityBinDir == "" {
		return false
	}
	exe, err := os.Readlink(e.path("/proc/" + pid + "/exe"))
	if err != nil {
		return false
	}
	exe = strings.TrimSuffix(exe, " (deleted)") // binary replaced by an upgrade
	rel, err := filepath.Rel(filepath.Clean(e.req.GravityBinDir), filepath.Clean(exe))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && rel != "."
}

// checkRoutes warns when no route of the host covers the service network,
// as on an isolated host without a default route: the kernel then refuses
// a Service address before kube-proxy's rules could rewrite it, so the
// host's own processes (the API server calling a webhook Service, a
// Service address curl'ed on the node) cannot reach Services. Pods are
// not affected: their default route is the node.
func checkRoutes(_ context.Context, e *env) Result {
	if e.req.ServiceCIDR == "" {
		return pass("no service network to check")
	}
	prefix, err := netip.ParsePrefix(e.req.ServiceCIDR)
	if err != nil {
		return fail("service network %q: %v", e.req.ServiceCIDR, err)
	}
	data, err := e.read("/proc/net/route")
	if err != nil {
		return warn("cannot read the routing table: %v", err)
	}
	routes, err := parseRoutes(data)
	if err != nil {
		return warn("cannot read the routing table: %v", err)
	}
	return routesResult(routes, prefix)
}

func routesResult(routes []netip.Prefix, service netip.Prefix) Result {
	for _, r := range routes {
		if r.Contains(service.Addr()) {
			return pass("route %s covers the service network %s", r, service)
		}
	}
	return warn("no route covers the service network %s (no default route): this host's own processes, the API server "+
		"calling a webhook among them, cannot reach Services; add a default route (on an isolated network one to the "+
		"node's own link is enough: `ip route add default dev <interface>`)", service)
}

// parseRoutes reads the IPv4 destinations of /proc/net/route: after a
// header line, fields Iface, Destination, Gateway, Flags, RefCnt, Use,
// Metric, Mask, … with addresses as little-endian hex.
func parseRoutes(data string) ([]netip.Prefix, error) {
	lines := strings.Split(strings.TrimSpace(data), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "Iface") {
		return nil, errors.New("/proc/net/route: no header")
	}
	var out []netip.Prefix
	for i, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fmt.Errorf("/proc/net/route line %d: %d fields", i+2, len(f))
		}
		dst, err1 := hexAddr(f[1])
		mask, err2 := hexAddr(f[7])
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("/proc/net/route line %d: %w", i+2, err)
		}
		ones, bits := net.IPMask(mask.AsSlice()).Size()
		if bits == 0 {
			return nil, fmt.Errorf("/proc/net/route line %d: mask %s is not a prefix", i+2, mask)
		}
		out = append(out, netip.PrefixFrom(dst, ones).Masked())
	}
	return out, nil
}

// hexAddr decodes an IPv4 address as /proc/net/route writes it.
func hexAddr(s string) (netip.Addr, error) {
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil || len(s) != 8 {
		return netip.Addr{}, fmt.Errorf("address %q: not 8 hex digits", s)
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(v))
	return netip.AddrFrom4(b), nil
}
