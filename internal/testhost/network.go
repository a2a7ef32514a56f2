//go:build linux

package testhost

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
)

// DefaultSubnet is a /24 from the private range that is rarely used by
// clouds, Docker or Kubernetes defaults.
const DefaultSubnet = "10.231.0.0/24"

// DefaultWorkDir holds the hosts' state; /var/tmp because overlayfs needs
// its upper dirs on a real filesystem, and /tmp is often tmpfs.
const DefaultWorkDir = "/var/tmp/gravity-testhost"

// Options configure a Network. Only Prefix is required.
type Options struct {
	// Prefix names every object the network makes: 1-8 of [a-z0-9], no "-",
	// so that one prefix is never the beginning of another's names.
	Prefix string
	// Subnet is the bridge's IPv4 /24 (or larger); the bridge gets the first
	// address, hosts the following ones. Default DefaultSubnet.
	Subnet string
	// WorkDir holds per-host state under WorkDir/Prefix. It must not be on
	// overlayfs. Default DefaultWorkDir.
	WorkDir string
	// DefaultRoute gives hosts a default route via the bridge, as a real
	// air-gapped machine has a gateway that leads nowhere; packets using it
	// are dropped and counted (EgressDrops). Without it hosts have no route
	// out and connects outside the subnet fail at once.
	DefaultRoute bool
	// Routed are networks inside the hosts (a cluster's pod network) that
	// hosts route to each other through the bridge, with a host's own
	// address as the next hop. Frames to them that the bridge switches
	// between hosts pass; anything sent to them through the real machine
	// is dropped and counted like any other egress.
	Routed []string
}

// Network is a bridge with its hosts.
type Network struct {
	opts     Options
	subnet   netip.Prefix
	bridgeIP netip.Addr
	stateDir string

	mu    sync.Mutex
	next  netip.Addr
	hosts []*Host
}

var (
	prefixRE = regexp.MustCompile(`^[a-z0-9]{1,8}$`)
	hostRE   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)
)

func (o *Options) normalize() (netip.Prefix, error) {
	if !prefixRE.MatchString(o.Prefix) {
		return netip.Prefix{}, fmt.Errorf("prefix %q: want 1-8 characters of [a-z0-9]", o.Prefix)
	}
	if o.Subnet == "" {
		o.Subnet = DefaultSubnet
	}
	if o.WorkDir == "" {
		o.WorkDir = DefaultWorkDir
	}
	p, err := netip.ParsePrefix(o.Subnet)
	if err != nil {
		return p, fmt.Errorf("subnet: %w", err)
	}
	if !p.Addr().Is4() || p.Bits() > 24 || p.Bits() < 8 {
		return p, fmt.Errorf("subnet %s: want an IPv4 prefix between /8 and /24", p)
	}
	for _, r := range o.Routed {
		rp, err := netip.ParsePrefix(r)
		if err != nil || !rp.Addr().Is4() || rp != rp.Masked() {
			return p, fmt.Errorf("routed network %q: want an IPv4 network prefix", r)
		}
		if rp.Overlaps(p) {
			return p, fmt.Errorf("routed network %s overlaps the subnet %s", rp, p)
		}
	}
	return p.Masked(), nil
}

// NewNetwork removes what an earlier run left under the prefix, then makes
// the bridge and its iptables rules.
func NewNetwork(ctx context.Context, opts Options) (*Network, error) {
	subnet, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	if err := checkTools(); err != nil {
		return nil, err
	}
	if err := Cleanup(ctx, opts.Prefix); err != nil {
		return nil, fmt.Errorf("clean up an earlier run of %s: %w", opts.Prefix, err)
	}
	n := &Network{opts: opts, subnet: subnet, bridgeIP: subnet.Addr().Next(),
		stateDir: filepath.Join(opts.WorkDir, opts.Prefix)}
	n.next = n.bridgeIP.Next()
	if err := checkSubnetFree(subnet); err != nil {
		return nil, err
	}
	if err := n.prepareStateDir(); err != nil {
		return nil, errors.Join(err, os.RemoveAll(n.stateDir))
	}
	if err := n.makeBridge(ctx); err != nil {
		return nil, errors.Join(err, n.Close())
	}
	return n, nil
}

func checkTools() error {
	if os.Geteuid() != 0 {
		return errors.New("test hosts need root")
	}
	for _, t := range []string{"ip", "nsenter"} {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("%s not found in PATH (iproute2, util-linux): %w", t, err)
		}
	}
	if !haveIPTables() {
		return errNoIPTables
	}
	return nil
}

// prepareStateDir empties the state dir and refuses overlayfs, where the
// hosts' overlay upper dirs and /var (containerd's snapshots) cannot live.
func (n *Network) prepareStateDir() error {
	if err := os.RemoveAll(n.stateDir); err != nil {
		return fmt.Errorf("remove old state: %w", err)
	}
	if err := os.MkdirAll(n.stateDir, 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(n.stateDir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", n.stateDir, err)
	}
	if st.Type == overlaySuperMagic {
		return fmt.Errorf("work dir %s is on overlayfs, which cannot hold overlay upper dirs: "+
			"choose Options.WorkDir on a real filesystem", n.opts.WorkDir)
	}
	return nil
}

// checkSubnetFree refuses a subnet that overlaps one of this machine's
// addresses: routing to it would then be ambiguous.
func checkSubnetFree(subnet netip.Prefix) error {
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("list interfaces: %w", err)
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			return fmt.Errorf("addresses of %s: %w", ifc.Name, err)
		}
		for _, a := range addrs {
			p, err := netip.ParsePrefix(a.String())
			if err == nil && p.Overlaps(subnet) {
				return fmt.Errorf("subnet %s overlaps %s on %s: choose another Options.Subnet", subnet, p, ifc.Name)
			}
		}
	}
	return nil
}

func (n *Network) bridge() string { return n.opts.Prefix + "-br" }

func (n *Network) makeBridge(ctx context.Context) error {
	br := n.bridge()
	cidr := netip.PrefixFrom(n.bridgeIP, n.subnet.Bits()).String()
	cmds := [][]string{
		{"link", "add", br, "type", "bridge"},
		{"addr", "add", cidr, "dev", br},
		{"link", "set", br, "up"},
	}
	for _, c := range cmds {
		if _, err := run(ctx, "ip", c...); err != nil {
			return err
		}
	}
	if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+br+"/disable_ipv6", []byte("1"), 0o644); err != nil &&
		!errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("disable IPv6 on %s: %w", br, err)
	}
	return n.addRules(ctx)
}

// addRules: hosts talk to each other through the bridge even where
// br_netfilter sends bridged frames through a FORWARD chain with policy
// DROP; anything they send to an address outside the subnet is dropped
// before routing, and counted.
func (n *Network) addRules(ctx context.Context) error {
	br, p := n.bridge(), n.opts.Prefix
	if err := addRule(ctx, p, "filter", "FORWARD", true, "-i", br, "-o", br, "-j", "ACCEPT"); err != nil {
		return err
	}
	// Routed networks pass the raw table (whether the bridge will switch
	// a frame is not known yet there); what the bridge does not switch
	// between hosts is routed by the real machine, and dropped in FORWARD.
	for _, r := range n.opts.Routed {
		if err := addRule(ctx, p, "raw", "PREROUTING", false, "-i", br, "-d", r, "-j", "ACCEPT"); err != nil {
			return err
		}
		if err := addRule(ctx, p, "filter", "FORWARD", false, "-i", br, "-d", r, "-j", "DROP"); err != nil {
			return err
		}
	}
	return addRule(ctx, p, "raw", "PREROUTING", false, "-i", br, "!", "-d", n.subnet.String(), "-j", "DROP")
}

// EgressDrops is how many packets hosts sent toward addresses outside the
// subnet (dropped at the bridge), routed networks included when they were
// sent to the real machine rather than to a host.
func (n *Network) EgressDrops(ctx context.Context) (int64, error) {
	rules, err := rulesTagged(ctx, n.opts.Prefix)
	if err != nil {
		return 0, err
	}
	var drops int64
	found := false
	for _, r := range rules {
		if strings.Contains(strings.Join(r.Args, " "), "-j DROP") {
			drops += r.Packets
			found = found || r.Table == "raw"
		}
	}
	if !found {
		return 0, fmt.Errorf("egress rule of %s is missing", n.opts.Prefix)
	}
	return drops, nil
}

// Prefix is the name prefix of every object of the network.
func (n *Network) Prefix() string { return n.opts.Prefix }

// Subnet is the bridge's subnet.
func (n *Network) Subnet() netip.Prefix { return n.subnet }

// BridgeIP is the real machine's address on the bridge, reachable from the
// hosts.
func (n *Network) BridgeIP() netip.Addr { return n.bridgeIP }

// Hosts lists the hosts added so far.
func (n *Network) Hosts() []*Host {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*Host(nil), n.hosts...)
}

// Close removes every process, namespace, link and rule of the network and
// its state dir.
func (n *Network) Close() error {
	err := Cleanup(context.Background(), n.opts.Prefix)
	n.mu.Lock()
	hosts := n.hosts
	n.hosts = nil
	n.mu.Unlock()
	for _, h := range hosts {
		h.waitInit()
	}
	if rmErr := os.RemoveAll(n.stateDir); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("remove state: %w", rmErr))
	}
	return err
}

// run runs a tool on the real machine; its error names the command and
// carries stderr.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err,
			strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
