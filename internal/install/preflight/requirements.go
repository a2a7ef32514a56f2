package preflight

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/opengravity/gravity/internal/manifest"
)

const (
	GiB = 1 << 30
	MiB = 1 << 20

	DefaultStateDir      = "/var/lib/gravity"
	DefaultGravityBinDir = "/usr/lib/gravity"
	DefaultMinDisk       = 10 * GiB
	DefaultMinWriteRate  = 10 * MiB // "10MB/s" as the manifest reads it
	DefaultMinCPU        = 2
	DefaultMinRAM        = 2 * GiB
)

// OSRequirement is a supported distribution: os-release ID and VERSION_ID
// values. No versions means any version of that distribution.
type OSRequirement struct {
	Name     string   `json:"name"`
	Versions []string `json:"versions,omitempty"`
}

// PortRange is an inclusive range of ports that must be free.
type PortRange struct {
	Protocol string `json:"protocol"` // "tcp" or "udp"
	From     int    `json:"from"`
	To       int    `json:"to"`
}

// Volume is a directory other than the state dir that the manifest asks
// for: its free space and write speed are checked like the state dir's.
type Volume struct {
	Path         string
	MinCapacity  uint64
	MinWriteRate uint64 // bytes/s
}

// Requirements is everything the checks compare the host against. Zero
// thresholds mean "no requirement".
type Requirements struct {
	MinCPU, MaxCPU int
	MinRAM, MaxRAM uint64
	OS             []OSRequirement
	StateDir       string
	MinDisk        uint64
	MinWriteRate   uint64 // bytes/s
	Volumes        []Volume
	Ports          []PortRange
	KernelModules  []string
	Tools          []string
	Conflicting    []string // process names (/proc/PID/comm)
	// GravityBinDir holds our own binaries: a conflicting name running
	// from here is a runtime we started, not a competitor.
	GravityBinDir string
	// ServiceCIDR is the cluster's service network, which a route of the
	// host must cover (the routes check); empty skips that check.
	ServiceCIDR string
	// Advisory lists checks whose thresholds are built-in guesses rather
	// than the app's stated needs: falling short of them warns instead of
	// failing. FromProfile removes a check from it when the manifest
	// states that check's threshold.
	Advisory []string
}

// DefaultPorts are the TCP ports the runtime listens on: etcd, the cluster
// service, the node agent, the registry, the apiserver, kubelet,
// kube-proxy, the controller manager, the scheduler, the pod network
// agent, the CSR approver and the node agent's health (a test in install
// checks this against the runtime's components).
var DefaultPorts = []int{2379, 2380, 3009, 3012, 3022, 3023, 3026, 5000, 32009, 6443, 10248, 10249, 10250, 10256, 10257, 10259, 10263, 10264, 10265, 10266, 10267}

// Defaults returns the runtime's built-in requirements for stateDir.
func Defaults(stateDir string) Requirements {
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	r := Requirements{
		MinCPU:        DefaultMinCPU,
		MinRAM:        DefaultMinRAM,
		StateDir:      stateDir,
		MinDisk:       DefaultMinDisk,
		MinWriteRate:  DefaultMinWriteRate,
		KernelModules: []string{"overlay", "br_netfilter", "ip_tables", "iptable_nat", "nf_conntrack", "veth"},
		Tools:         []string{"iptables", "iptables-save", "iptables-restore", "mount", "umount"},
		Conflicting:   []string{"dockerd", "containerd", "kubelet", "kube-apiserver", "etcd", "k3s", "k3s-server", "rke2"},
		GravityBinDir: DefaultGravityBinDir,
		// Built-in sizes are guesses that test VMs and CI boxes often miss
		// while still running a cluster fine; only an app author's stated
		// minimum is worth refusing an install over.
		Advisory: []string{"cpu", "ram", "disk-space", "disk-speed"},
	}
	for _, p := range DefaultPorts {
		r.Ports = append(r.Ports, PortRange{Protocol: "tcp", From: p, To: p})
	}
	return r
}

// FromProfile returns the defaults for stateDir overridden by the node
// profile's requirements. p may be nil.
func FromProfile(p *manifest.NodeProfile, stateDir string) (Requirements, error) {
	r := Defaults(stateDir)
	if p == nil || p.Requirements == nil {
		return r, nil
	}
	mr := p.Requirements
	if mr.CPU != nil {
		r.MinCPU, r.MaxCPU = mr.CPU.Min, mr.CPU.Max
		r.strict("cpu")
	}
	if err := r.applyRAM(mr.RAM); err != nil {
		return r, fmt.Errorf("node profile %q: %w", p.Name, err)
	}
	for _, o := range mr.OS {
		r.OS = append(r.OS, OSRequirement{Name: o.Name, Versions: o.Versions})
	}
	if err := r.applyPorts(mr.Network); err != nil {
		return r, fmt.Errorf("node profile %q: %w", p.Name, err)
	}
	for _, v := range mr.Volumes {
		if err := r.applyVolume(v); err != nil {
			return r, fmt.Errorf("node profile %q: volume %s: %w", p.Name, v.Path, err)
		}
	}
	return r, nil
}

func (r *Requirements) strict(check string) {
	r.Advisory = slices.DeleteFunc(r.Advisory, func(s string) bool { return s == check })
}

func (r *Requirements) applyRAM(ram *manifest.RAM) error {
	if ram == nil {
		return nil
	}
	min, err := capacity(ram.Min)
	if err != nil {
		return fmt.Errorf("ram.min: %w", err)
	}
	max, err := capacity(ram.Max)
	if err != nil {
		return fmt.Errorf("ram.max: %w", err)
	}
	r.MinRAM, r.MaxRAM = min, max
	r.strict("ram")
	return nil
}

func (r *Requirements) applyPorts(n *manifest.Network) error {
	if n == nil {
		return nil
	}
	for _, p := range n.Ports {
		proto := strings.ToLower(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" {
			return fmt.Errorf("port protocol %q: want tcp or udp", p.Protocol)
		}
		for _, s := range p.Ranges {
			from, to, err := ParsePortRange(s)
			if err != nil {
				return err
			}
			r.Ports = append(r.Ports, PortRange{Protocol: proto, From: from, To: to})
		}
	}
	return nil
}

// applyVolume folds a volume on the state dir into the state dir's
// thresholds and keeps any other as a Volume of its own.
func (r *Requirements) applyVolume(v manifest.Volume) error {
	size, err := capacity(v.Capacity)
	if err != nil {
		return err
	}
	rate, err := transferRate(v.MinTransferRate)
	if err != nil {
		return err
	}
	if filepath.Clean(v.Path) != filepath.Clean(r.StateDir) {
		if size > 0 || rate > 0 {
			r.Volumes = append(r.Volumes, Volume{Path: v.Path, MinCapacity: size, MinWriteRate: rate})
		}
		return nil
	}
	if size > 0 {
		r.MinDisk = size
		r.strict("disk-space")
	}
	if rate > 0 {
		r.MinWriteRate = rate
		r.strict("disk-speed")
	}
	return nil
}

func capacity(c manifest.Capacity) (uint64, error) {
	if c == "" {
		return 0, nil
	}
	n, err := c.Bytes()
	if err != nil {
		return 0, fmt.Errorf("capacity: %w", err)
	}
	return uint64(n), nil
}

func transferRate(t manifest.TransferRate) (uint64, error) {
	if t == "" {
		return 0, nil
	}
	n, err := t.BytesPerSecond()
	if err != nil {
		return 0, fmt.Errorf("minTransferRate: %w", err)
	}
	return uint64(n), nil
}

// ParsePortRange parses the manifest's "8080" or "8000-8010".
func ParsePortRange(s string) (from, to int, err error) {
	a, b, isRange := strings.Cut(strings.TrimSpace(s), "-")
	if from, err = parsePort(a); err != nil {
		return 0, 0, fmt.Errorf("port range %q: %w", s, err)
	}
	to = from
	if isRange {
		if to, err = parsePort(b); err != nil {
			return 0, 0, fmt.Errorf("port range %q: %w", s, err)
		}
	}
	if to < from {
		return 0, 0, fmt.Errorf("port range %q: end before start", s)
	}
	return from, to, nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("invalid port %q (want 1-65535)", s)
	}
	return n, nil
}
