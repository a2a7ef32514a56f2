package node

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/opengravity/gravity/internal/runtime/config"
)

const workerYAML = `
ip: 192.0.2.20
hostname: node-3
roles: [node]
clusterName: example
masterIPs: [192.0.2.10, 192.0.2.11]
nodePodCIDR: 10.244.3.0/24
stateDir: /srv/gravity
`

func TestParseNode(t *testing.T) {
	want := config.Node{
		IP: workerIP, Hostname: "node-3", Roles: []string{"node"}, ClusterName: "example",
		MasterIPs: []net.IP{masterIP, master2IP}, NodePodCIDR: "10.244.3.0/24", StateDir: "/srv/gravity",
	}
	tests := []struct {
		name, yaml string
		want       *config.Node
		err        string
	}{
		{"worker", workerYAML, &want, ""},
		{"unknown field", workerYAML + "cgroupDriver: systemd\n", nil, "field cgroupDriver not found"},
		{"misspelt field", strings.Replace(workerYAML, "masterIPs", "masterIps", 1), nil, "field masterIps not found"},
		{"duplicate field", workerYAML + "hostname: other\n", nil, "hostname"},
		{"bad ip", strings.Replace(workerYAML, "ip: 192.0.2.20", "ip: 192.0.2", 1), nil, `ip: "192.0.2" is not an IP`},
		{"bad master", strings.Replace(workerYAML, "192.0.2.11]", "x]", 1), nil, `masterIPs: "x"`},
		{"invalid config", strings.Replace(workerYAML, "10.244.3.0/24", "10.99.0.0/24", 1), nil, "NodePodCIDR"},
		{"no cluster", strings.Replace(workerYAML, "clusterName: example", "", 1), nil, "ClusterName"},
		{"not a mapping", "- a\n", nil, "node config"},
		{"empty", "", nil, "empty document"},
		{"two documents", workerYAML + "---\n" + workerYAML, nil, "more than one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNode([]byte(tt.yaml))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, *tt.want) {
				t.Errorf("got %+v\nwant %+v", got, *tt.want)
			}
		})
	}
}

// The snapshotter is left unset so that Run can detect it.
func TestParseNodeKeepsDefaultsUnset(t *testing.T) {
	n, err := ParseNode([]byte(workerYAML))
	if err != nil {
		t.Fatal(err)
	}
	if n.Snapshotter != "" || n.RunDir != "" {
		t.Errorf("defaults applied: snapshotter %q, runDir %q", n.Snapshotter, n.RunDir)
	}
}

func TestLoadNode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.yaml")
	if err := os.WriteFile(path, []byte(workerYAML+"bogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadNode(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("err = %v, want it to name %s", err, path)
	}
	if _, err := LoadNode(filepath.Join(t.TempDir(), "none.yaml")); err == nil {
		t.Error("missing file: no error")
	}
}

func FuzzParseNode(f *testing.F) {
	f.Add([]byte(workerYAML))
	f.Add([]byte(workerYAML + "roles: [master]\n"))
	f.Add([]byte("ip: 192.0.2.10\nclusterName: c\nmasterIPs: [192.0.2.10]\nnodePodCIDR: 10.244.0.0/24\nroles: [master, node]\n"))
	f.Add([]byte("ip: ::1\n"))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := ParseNode(data)
		if err != nil {
			return
		}
		// Whatever parses must generate: the config is valid.
		if _, err := config.Files(n); err != nil {
			t.Fatalf("parsed node does not generate: %v", err)
		}
		if _, err := Probes(n); err != nil {
			t.Fatalf("parsed node has no probes: %v", err)
		}
	})
}

func TestFormatNodeRoundTrip(t *testing.T) {
	in := "ip: 10.0.0.5\nroles: [master, node]\nclusterName: c\nmasterIPs: [10.0.0.5]\nnodePodCIDR: 10.244.0.0/24\nbinDir: /opt/bin\n"
	n, err := ParseNode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	data, err := FormatNode(n)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseNode(data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if !reflect.DeepEqual(n, back) {
		t.Fatalf("round trip:\n%+v\n%+v", n, back)
	}
}
