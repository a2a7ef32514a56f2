package config

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/version"
)

// Roles a node can have.
const (
	RoleMaster = "master"
	RoleNode   = "node"
)

// Snapshotters containerd can be configured with.
const (
	SnapshotterOverlay = "overlayfs"
	SnapshotterNative  = "native"
)

// VersionBinDir is where runtime version v's binaries live.
func VersionBinDir(v string) string { return filepath.Join(RuntimeRoot, v, "bin") }

// Defaults, as Gravity and kubeadm chose them.
const (
	DefaultPodCIDR       = "10.244.0.0/16"
	DefaultServiceCIDR   = "10.100.0.0/16"
	DefaultClusterDomain = pki.DefaultClusterDomain
	DefaultStateDir      = "/var/lib/gravity"
	DefaultRunDir        = "/run/gravity"
	DefaultLogDir        = "/var/log/gravity"
	// RuntimeRoot holds the runtime's binaries, one directory per version
	// (VersionBinDir): an upgrade installs the next beside the running one
	// and switches a node's config to it, so switching back is a rollback.
	RuntimeRoot = "/usr/lib/gravity"
	// PauseImageName is the sandbox image the base image builds from our
	// own pause program, tagged with the gravity version (baseimage.ImagePause).
	PauseImageName = RegistryAddr + "/gravitational/pause"
	// RegistryAddr is how images in the cluster registry are named, on
	// nodes and in pods.
	RegistryAddr = pki.RegistryHost + ":5000"
)

// Node is everything a node's runtime configuration is derived from.
type Node struct {
	// Name is the Kubernetes node name; Gravity names nodes by their
	// advertise IP, which is the default. etcd member names are always the
	// masters' IPs (EtcdMemberName), which is the same under that rule.
	Name string
	// IP is the advertise address: every component listens on it or on
	// loopback, never on every interface.
	IP       net.IP
	Hostname string
	// Roles holds RoleMaster and/or RoleNode; empty means RoleNode.
	Roles       []string
	ClusterName string
	// MasterIPs lists every master: etcd peers, registry endpoints and
	// the API servers.
	MasterIPs []net.IP
	// PodCIDR is the cluster pod network; NodePodCIDR this node's share of
	// it, assigned by the installer or joiner (the controller manager does
	// not allocate node CIDRs).
	PodCIDR     string
	NodePodCIDR string
	ServiceCIDR string
	// ClusterDomain is the DNS zone of services.
	ClusterDomain string
	// DNSUpstreams are the servers CoreDNS forwards names outside the
	// cluster to (IP or IP:port). Empty, the default, means no forwarding
	// at all: an air-gapped cluster resolves only its own names.
	DNSUpstreams []string
	StateDir     string
	RunDir       string
	LogDir       string
	BinDir       string
	// CgroupRoot is the kubelet's cgroup root; by default derived from the
	// node name so that two nodes on one kernel never share cgroups.
	CgroupRoot string
	// Snapshotter is SnapshotterOverlay (default) or SnapshotterNative;
	// see DetectSnapshotter.
	Snapshotter string
	PauseImage  string
	// ModifyKernelDefaults lets kubelet rewrite the global kernel tunables
	// it wants (vm.overcommit_memory, kernel.panic, ...; KernelTunables).
	// Off by default: those sysctls are not namespaced, so changing them
	// changes the machine for everyone on it. Off, kubelet refuses to
	// start unless the host already has the values; preflight checks them.
	ModifyKernelDefaults bool
}

// WithDefaults fills in defaults and validates n. Errors name the field.
func (n Node) WithDefaults() (Node, error) {
	n = n.defaults()
	for _, check := range []func() error{n.checkIdentity, n.checkNetworks, n.checkDirs, n.checkMisc} {
		if err := check(); err != nil {
			return n, fmt.Errorf("node config: %w", err)
		}
	}
	return n, nil
}

func (n Node) defaults() Node {
	if n.Name == "" && n.IP != nil {
		n.Name = n.IP.String()
	}
	if len(n.Roles) == 0 {
		n.Roles = []string{RoleNode}
	}
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	set(&n.PodCIDR, DefaultPodCIDR)
	set(&n.ServiceCIDR, DefaultServiceCIDR)
	set(&n.ClusterDomain, DefaultClusterDomain)
	set(&n.StateDir, DefaultStateDir)
	set(&n.RunDir, DefaultRunDir)
	set(&n.LogDir, DefaultLogDir)
	set(&n.BinDir, VersionBinDir(version.Version))
	set(&n.Snapshotter, SnapshotterOverlay)
	set(&n.PauseImage, PauseImageName+":"+version.Version)
	set(&n.CgroupRoot, "/gravity-"+sanitize(n.Name))
	return n
}

var unsafeCgroupChars = regexp.MustCompile(`[^a-z0-9._-]+`)

// sanitize makes a node name (an IP, possibly IPv6) usable as one cgroup
// path element.
func sanitize(name string) string {
	return strings.Trim(unsafeCgroupChars.ReplaceAllString(strings.ToLower(name), "-"), "-.")
}

// dns1123 is a lowercase RFC 1123 subdomain, what kubelet accepts as a node
// name (an IPv4 address is one).
var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

func (n Node) checkIdentity() error {
	if n.IP == nil || n.IP.IsUnspecified() || n.IP.IsLoopback() {
		return fmt.Errorf("IP: want the node's advertise address, got %v", n.IP)
	}
	if n.IP.To4() == nil {
		return fmt.Errorf("IP: %v: only IPv4 is supported", n.IP)
	}
	if len(n.Name) > 253 || !dns1123.MatchString(n.Name) {
		return fmt.Errorf("Name: %q is not a valid node name (lowercase RFC 1123 subdomain)", n.Name)
	}
	if n.Hostname != "" && (len(n.Hostname) > 253 || !dns1123.MatchString(n.Hostname)) {
		return fmt.Errorf("Hostname: %q is not a valid host name", n.Hostname)
	}
	if len(n.ClusterDomain) > 200 || !dns1123.MatchString(n.ClusterDomain) {
		return fmt.Errorf("ClusterDomain: %q is not a valid DNS domain", n.ClusterDomain)
	}
	if n.ClusterName == "" || !dns1123.MatchString(n.ClusterName) {
		return fmt.Errorf("ClusterName: %q is not a valid cluster name (lowercase letters, digits, - and ., starting and ending with a letter or digit)", n.ClusterName)
	}
	for _, r := range n.Roles {
		if r != RoleMaster && r != RoleNode {
			return fmt.Errorf("Roles: unknown role %q (want %q or %q)", r, RoleMaster, RoleNode)
		}
	}
	return n.checkMasters()
}

func (n Node) checkMasters() error {
	if len(n.MasterIPs) == 0 {
		return errors.New("MasterIPs: at least one master is needed")
	}
	seen := map[string]bool{}
	for _, ip := range n.MasterIPs {
		if ip == nil || ip.To4() == nil || ip.IsUnspecified() || ip.IsLoopback() {
			return fmt.Errorf("MasterIPs: %v is not a usable IPv4 address", ip)
		}
		if seen[ip.String()] {
			return fmt.Errorf("MasterIPs: %v listed twice", ip)
		}
		seen[ip.String()] = true
	}
	if n.IsMaster() && !seen[n.IP.String()] {
		return fmt.Errorf("MasterIPs: this node is a master but its IP %v is not listed", n.IP)
	}
	return nil
}

func (n Node) checkNetworks() error {
	pod, err := parseCIDR("PodCIDR", n.PodCIDR)
	if err != nil {
		return err
	}
	svc, err := parseCIDR("ServiceCIDR", n.ServiceCIDR)
	if err != nil {
		return err
	}
	if overlaps(pod, svc) {
		return fmt.Errorf("PodCIDR %s and ServiceCIDR %s overlap", pod, svc)
	}
	if ones, bits := svc.Mask.Size(); bits-ones < 4 {
		return fmt.Errorf("ServiceCIDR: %s is too small for the DNS service address (.10)", svc)
	}
	if n.NodePodCIDR == "" {
		return errors.New("NodePodCIDR: empty; the installer assigns each node a subnet of PodCIDR")
	}
	node, err := parseCIDR("NodePodCIDR", n.NodePodCIDR)
	if err != nil {
		return err
	}
	if !contains(pod, node) {
		return fmt.Errorf("NodePodCIDR: %s is not inside PodCIDR %s", node, pod)
	}
	if ones, bits := node.Mask.Size(); bits-ones < 2 {
		return fmt.Errorf("NodePodCIDR: %s leaves no addresses for pods", node)
	}
	for _, ip := range append([]net.IP{n.IP}, n.MasterIPs...) {
		if pod.Contains(ip) || svc.Contains(ip) {
			return fmt.Errorf("IP/MasterIPs: %v lies inside the pod or service network", ip)
		}
	}
	return n.checkUpstreams()
}

func parseCIDR(field, s string) (*net.IPNet, error) {
	ip, ipnet, err := net.ParseCIDR(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	if ip.To4() == nil {
		return nil, fmt.Errorf("%s: %s: only IPv4 is supported", field, s)
	}
	if !ip.Equal(ipnet.IP) {
		return nil, fmt.Errorf("%s: %s has host bits set (did you mean %s?)", field, s, ipnet)
	}
	return ipnet, nil
}

func overlaps(a, b *net.IPNet) bool { return a.Contains(b.IP) || b.Contains(a.IP) }

// contains reports whether inner lies wholly inside outer.
func contains(outer, inner *net.IPNet) bool {
	oOnes, _ := outer.Mask.Size()
	iOnes, _ := inner.Mask.Size()
	return outer.Contains(inner.IP) && iOnes >= oOnes
}

func (n Node) checkUpstreams() error {
	for _, u := range n.DNSUpstreams {
		host := u
		if h, _, err := net.SplitHostPort(u); err == nil {
			host = h
		}
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			return fmt.Errorf("DNSUpstreams: %q is not an IP or IP:port", u)
		}
	}
	return nil
}

func (n Node) checkDirs() error {
	dirs := []struct{ field, dir string }{
		{"StateDir", n.StateDir}, {"RunDir", n.RunDir}, {"LogDir", n.LogDir},
		{"BinDir", n.BinDir}, {"CgroupRoot", n.CgroupRoot},
	}
	for _, d := range dirs {
		if !filepath.IsAbs(d.dir) || filepath.Clean(d.dir) != d.dir || d.dir == "/" {
			return fmt.Errorf("%s: %q must be a clean absolute path other than /", d.field, d.dir)
		}
		if !utf8.ValidString(d.dir) || strings.ContainsFunc(d.dir, unicode.IsControl) || strings.ContainsAny(d.dir, "\"'\\ ,=") {
			return fmt.Errorf("%s: %q holds characters the component configs cannot carry", d.field, d.dir)
		}
	}
	return nil
}

func (n Node) checkMisc() error {
	if n.Snapshotter != SnapshotterOverlay && n.Snapshotter != SnapshotterNative {
		return fmt.Errorf("Snapshotter: %q (want %q or %q)", n.Snapshotter, SnapshotterOverlay, SnapshotterNative)
	}
	if !strings.HasPrefix(n.PauseImage, RegistryAddr+"/") || strings.ContainsAny(n.PauseImage, "\"'\\\n ") {
		return fmt.Errorf("PauseImage: %q must come from the cluster registry %s", n.PauseImage, RegistryAddr)
	}
	return nil
}

// PKINode is what pki.NodeCerts needs to issue n's certificates; n should
// have its defaults.
func (n Node) PKINode() pki.Node {
	return pki.Node{
		Name: n.Name, IP: n.IP, Hostname: n.Hostname, Master: n.IsMaster(),
		ServiceIP: n.APIServiceIP(), ClusterDomain: n.ClusterDomain,
	}
}

// IsMaster reports whether n runs the control plane.
func (n Node) IsMaster() bool { return slices.Contains(n.Roles, RoleMaster) }

// APIServiceIP is the first address of the service CIDR, the cluster IP of
// the kubernetes service. Nil if the CIDR does not parse.
func (n Node) APIServiceIP() net.IP { return n.serviceIP(1) }

// DNSServiceIP is the cluster DNS service address, the tenth of the service
// CIDR (kubeadm's convention). Nil if the CIDR does not parse.
func (n Node) DNSServiceIP() net.IP { return n.serviceIP(10) }

func (n Node) serviceIP(offset uint32) net.IP {
	svc := n.ServiceCIDR
	if svc == "" {
		svc = DefaultServiceCIDR
	}
	_, ipnet, err := net.ParseCIDR(svc)
	if err != nil || ipnet.IP.To4() == nil {
		return nil
	}
	ip := make(net.IP, net.IPv4len)
	binary.BigEndian.PutUint32(ip, binary.BigEndian.Uint32(ipnet.IP.To4())+offset)
	if !ipnet.Contains(ip) {
		return nil
	}
	return ip
}

// APIServer is the address this node's clients reach the API server at: its
// own on a master (the API server listens on the node IP only); on a
// worker its load balancer on loopback, in front of every master's (the
// API servers' certificates hold 127.0.0.1). Empty when n names neither.
func (n Node) APIServer() string {
	var ip net.IP
	switch {
	case n.IsMaster() && n.IP != nil:
		ip = n.IP
	case len(n.MasterIPs) > 0:
		ip = loopback
	default:
		return ""
	}
	return "https://" + net.JoinHostPort(ip.String(), "6443")
}
