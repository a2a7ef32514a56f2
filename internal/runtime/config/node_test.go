package config

import (
	"net"
	"slices"
	"strings"
	"testing"
)

func TestWithDefaults(t *testing.T) {
	n, err := testWorker().WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ field, got, want string }{
		{"Name", n.Name, "192.0.2.20"},
		{"PodCIDR", n.PodCIDR, DefaultPodCIDR},
		{"ServiceCIDR", n.ServiceCIDR, DefaultServiceCIDR},
		{"ClusterDomain", n.ClusterDomain, "cluster.local"},
		{"StateDir", n.StateDir, "/var/lib/gravity"},
		{"RunDir", n.RunDir, "/run/gravity"},
		{"LogDir", n.LogDir, "/var/log/gravity"},
		{"CgroupRoot", n.CgroupRoot, "/gravity-192.0.2.20"},
		{"Snapshotter", n.Snapshotter, SnapshotterOverlay},
		{"PauseImage", n.PauseImage, "registry.local:5000/gravitational/pause:0.1.0"},
		{"DNSServiceIP", n.DNSServiceIP().String(), "10.100.0.10"},
		{"APIServiceIP", n.APIServiceIP().String(), "10.100.0.1"},
		{"APIServer", n.APIServer(), "https://127.0.0.1:6443"}, // its balancer,
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if len(n.DNSUpstreams) != 0 {
		t.Errorf("DNSUpstreams defaulted to %v, want none", n.DNSUpstreams)
	}
	m, err := testMaster().WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if got := m.APIServer(); got != "https://192.0.2.10:6443" {
		t.Errorf("master APIServer = %q", got)
	}
	if got := (Node{}).APIServer(); got != "" {
		t.Errorf("APIServer without masters = %q", got)
	}
}

// TestCgroupRootsDiffer: two nodes on one kernel must never share cgroups.
func TestCgroupRootsDiffer(t *testing.T) {
	a, b := testMaster(), testWorker()
	a, _ = a.WithDefaults()
	b, _ = b.WithDefaults()
	if a.CgroupRoot == b.CgroupRoot {
		t.Fatalf("both nodes got cgroup root %s", a.CgroupRoot)
	}
	if got := sanitize("FD00::1/x"); got != "fd00-1-x" {
		t.Errorf("sanitize = %q", got)
	}
}

func TestServiceIPs(t *testing.T) {
	for _, tc := range []struct{ cidr, api, dns string }{
		{"10.100.0.0/16", "10.100.0.1", "10.100.0.10"},
		{"172.16.32.0/20", "172.16.32.1", "172.16.32.10"},
		{"10.0.0.240/28", "10.0.0.241", "10.0.0.250"},
	} {
		n := Node{ServiceCIDR: tc.cidr}
		if got := n.APIServiceIP().String(); got != tc.api {
			t.Errorf("%s: APIServiceIP = %s, want %s", tc.cidr, got, tc.api)
		}
		if got := n.DNSServiceIP().String(); got != tc.dns {
			t.Errorf("%s: DNSServiceIP = %s, want %s", tc.cidr, got, tc.dns)
		}
	}
	if ip := (Node{ServiceCIDR: "10.0.0.0/30"}).DNSServiceIP(); ip != nil {
		t.Errorf("DNS IP outside a /30: %v", ip)
	}
	if ip := (Node{ServiceCIDR: "bogus"}).APIServiceIP(); ip != nil {
		t.Errorf("API IP of a bad CIDR: %v", ip)
	}
}

func TestValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Node)
		want   string // substring of the error, naming the field
	}{
		{"no IP", func(n *Node) { n.IP = nil }, "IP:"},
		{"loopback IP", func(n *Node) { n.IP = net.IPv4(127, 0, 0, 1) }, "IP:"},
		{"IPv6", func(n *Node) { n.IP = net.ParseIP("2001:db8::1") }, "only IPv4"},
		{"bad name", func(n *Node) { n.Name = "Node_1" }, "Name:"},
		{"bad hostname", func(n *Node) { n.Hostname = "a b" }, "Hostname:"},
		{"bad cluster domain", func(n *Node) { n.ClusterDomain = "cluster.local.\n}" }, "ClusterDomain:"},
		{"dotted cluster domain", func(n *Node) { n.ClusterDomain = ".local" }, "ClusterDomain:"},
		{"no cluster name", func(n *Node) { n.ClusterName = "" }, "ClusterName:"},
		{"unknown role", func(n *Node) { n.Roles = []string{"etcd"} }, "Roles:"},
		{"no masters", func(n *Node) { n.MasterIPs = nil }, "MasterIPs: at least one"},
		{"duplicate master", func(n *Node) { n.MasterIPs = []net.IP{masterIP, masterIP} }, "listed twice"},
		{"master not listed", func(n *Node) { n.MasterIPs = []net.IP{master2IP} }, "not listed"},
		{"bad pod CIDR", func(n *Node) { n.PodCIDR = "10.244.0.0/33" }, "PodCIDR:"},
		{"host bits", func(n *Node) { n.PodCIDR = "10.244.0.1/16" }, "host bits"},
		{"bad service CIDR", func(n *Node) { n.ServiceCIDR = "x" }, "ServiceCIDR:"},
		{"overlap", func(n *Node) { n.ServiceCIDR = "10.244.128.0/20" }, "overlap"},
		{"tiny service CIDR", func(n *Node) { n.ServiceCIDR = "10.100.0.0/30" }, "ServiceCIDR:"},
		{"no node pod CIDR", func(n *Node) { n.NodePodCIDR = "" }, "NodePodCIDR: empty"},
		{"node CIDR outside", func(n *Node) { n.NodePodCIDR = "10.245.1.0/24" }, "not inside PodCIDR"},
		{"node CIDR wider", func(n *Node) { n.NodePodCIDR = "10.0.0.0/8" }, "not inside PodCIDR"},
		{"node IP in pod net", func(n *Node) {
			n.IP = net.IPv4(10, 244, 9, 9)
			n.MasterIPs = []net.IP{n.IP}
		}, "inside the pod or service network"},
		{"bad upstream", func(n *Node) { n.DNSUpstreams = []string{"dns.example.com"} }, "DNSUpstreams:"},
		{"relative state dir", func(n *Node) { n.StateDir = "var/lib" }, "StateDir:"},
		{"root state dir", func(n *Node) { n.StateDir = "/" }, "StateDir:"},
		{"unclean run dir", func(n *Node) { n.RunDir = "/run/../tmp" }, "RunDir:"},
		{"quote in log dir", func(n *Node) { n.LogDir = `/var/log/"x` }, "LogDir:"},
		{"bad cgroup root", func(n *Node) { n.CgroupRoot = "gravity" }, "CgroupRoot:"},
		{"bad snapshotter", func(n *Node) { n.Snapshotter = "zfs" }, "Snapshotter:"},
		{"public pause image", func(n *Node) { n.PauseImage = "registry.k8s.io/pause:3.10" }, "PauseImage:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := testMaster()
			tc.mutate(&n)
			_, err := n.WithDefaults()
			if err == nil {
				t.Fatalf("no error, want one with %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			if _, err := Files(n); err == nil {
				t.Fatal("Files accepted an invalid node")
			}
		})
	}
}

func TestMasterOnlyGenerators(t *testing.T) {
	w := testWorker()
	for name, gen := range map[string]func(Node) error{
		"etcd":       func(n Node) error { _, err := EtcdArgs(n, ClusterStateNew); return err },
		"apiserver":  func(n Node) error { _, err := APIServerArgs(n); return err },
		"controller": func(n Node) error { _, err := ControllerManagerArgs(n); return err },
		"scheduler":  func(n Node) error { _, err := SchedulerArgs(n); return err },
		"registry":   func(n Node) error { _, err := RegistryConfig(n); return err },
		"admission":  func(n Node) error { _, err := AdmissionConfig(n); return err },
	} {
		if err := gen(w); err == nil {
			t.Errorf("%s: generated for a worker", name)
		}
	}
	if _, err := EtcdArgs(testMaster(), "restored"); err == nil {
		t.Error("etcd accepted an unknown cluster state")
	}
	args, err := EtcdArgs(testMaster(), ClusterStateExisting)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(args, "--initial-cluster-state=existing") {
		t.Errorf("existing state not passed: %v", args)
	}
}
