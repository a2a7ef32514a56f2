package config

import (
	"net"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"sigs.k8s.io/yaml"
)

// FuzzNodeConfig feeds arbitrary node settings through validation: a node
// WithDefaults accepts must generate every file, each well-formed and
// pointing nowhere outside the cluster; one it refuses must be refused by
// every generator too.
func FuzzNodeConfig(f *testing.F) {
	f.Add("192.0.2.10", "", "10.244.0.0/16", "10.244.1.0/24", "10.100.0.0/16", "cluster.local", "", "/var/lib/gravity", true)
	f.Add("192.0.2.20", "node-3", "172.16.0.0/12", "172.16.5.0/24", "10.96.0.0/12", "example.internal", "192.0.2.53", "/srv/g", false)
	f.Add("192.0.2.20", "", "10.244.0.0/16", "10.244.0.0/16", "10.244.0.0/24", "x", "192.0.2.53:5353", "/a b", true)
	f.Add("10.0.0.1", "", "10.0.0.0/8", "10.1.0.0/16", "192.168.0.0/16", "cluster.local", "bogus", "/var", false)
	f.Fuzz(func(t *testing.T, ip, name, pod, nodePod, svc, domain, upstream, state string, master bool) {
		n := Node{
			Name: name, IP: net.ParseIP(ip), ClusterName: "fuzz", PodCIDR: pod, NodePodCIDR: nodePod,
			ServiceCIDR: svc, ClusterDomain: domain, StateDir: state, Roles: []string{RoleNode},
		}
		n.MasterIPs = []net.IP{net.IPv4(192, 0, 2, 250)}
		if master {
			n.Roles = append(n.Roles, RoleMaster)
			n.MasterIPs = append(n.MasterIPs, n.IP)
		}
		if upstream != "" {
			n.DNSUpstreams = []string{upstream}
		}
		nd, err := n.WithDefaults()
		if err != nil {
			if !strings.HasPrefix(err.Error(), "node config: ") {
				t.Fatalf("error without context: %v", err)
			}
			if _, ferr := Files(n); ferr == nil {
				t.Fatalf("Files accepted a node WithDefaults refused (%v)", err)
			}
			return
		}
		a, err := generate(n)
		if err != nil {
			t.Fatalf("valid node, generation failed: %v", err)
		}
		checkWellFormed(t, a.files)
		for path, data := range a.files {
			if bad := airGapCheck(nd, string(data)); len(bad) > 0 {
				t.Fatalf("%s points outside: %v\n%s", path, bad, data)
			}
		}
	})
}

func checkWellFormed(t *testing.T, files map[string][]byte) {
	t.Helper()
	for path, data := range files {
		var v any
		var err error
		switch {
		case strings.HasSuffix(path, ".yaml"), strings.HasSuffix(path, ".conflist"):
			err = yaml.Unmarshal(data, &v)
		case strings.HasSuffix(path, ".toml"):
			_, err = toml.Decode(string(data), &v)
		case strings.HasSuffix(path, "Corefile"):
			if strings.Count(string(data), "{") != strings.Count(string(data), "}") {
				t.Fatalf("Corefile braces unbalanced:\n%s", data)
			}
		}
		if err != nil {
			t.Fatalf("%s does not parse: %v\n%s", path, err, data)
		}
	}
}
