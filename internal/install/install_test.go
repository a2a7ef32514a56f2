package install

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opengravity/gravity/internal/clusterimage"
	"github.com/opengravity/gravity/internal/install/preflight"
	"github.com/opengravity/gravity/internal/manifest"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/runtime/node"
)

func testConfig() Config {
	return Config{OperationID: "op", ClusterName: "c", AppName: "cluster-image", AppVersion: "0.0.1", BaseVersion: "0.1.0",
		StateDir: "/var/lib/gravity", PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.100.0.0/16",
		Nodes: []Node{{IP: "10.0.0.5", Hostname: "node-1", Role: "node", Master: true, PodSubnet: "10.244.0.0/24"}}}
}

// TestPlanPhases: Gravity's phase ids, each leaf with an executor, valid.
func TestPlanPhases(t *testing.T) {
	c := testConfig()
	p := Plan(c)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ph := range p.Leaves() {
		ids = append(ids, ph.ID)
	}
	want := "/init /checks /configure /bootstrap/10.0.0.5 /pull/10.0.0.5 /masters/10.0.0.5/runtime /wait /rbac " +
		"/coredns /export/10.0.0.5 /health /runtime/dns-app /app/cluster-image"
	if got := strings.Join(ids, " "); got != want {
		t.Fatalf("leaves:\n got %s\nwant %s", got, want)
	}
	ex := executors(c, nil, "", nil, nil)
	for _, ph := range p.Leaves() {
		if _, err := ex[ph.Type](ph); err != nil {
			t.Errorf("%s: %v", ph.ID, err)
		}
		if ph.State != plan.Unstarted {
			t.Errorf("%s starts %s", ph.ID, ph.State)
		}
	}
	// Node phases know their node, so they go to its agent.
	for _, id := range []string{"/bootstrap/10.0.0.5", "/pull/10.0.0.5", "/masters/10.0.0.5/runtime", "/export/10.0.0.5"} {
		if ph, _ := p.Find(id); ph.Node != "10.0.0.5" {
			t.Errorf("%s runs on %q", id, ph.Node)
		}
	}
}

func TestNodeSubnet(t *testing.T) {
	for _, tc := range []struct {
		cidr string
		i    int
		want string
		err  string
	}{
		{cidr: "10.244.0.0/16", want: "10.244.0.0/24"},
		{cidr: "10.244.0.0/16", i: 3, want: "10.244.3.0/24"},
		{cidr: "192.168.0.0/23", i: 1, want: "192.168.1.0/24"},
		{cidr: "10.244.0.0/24", err: "too small"},
		{cidr: "10.244.1.0/16", err: "host bits set (did you mean 10.244.0.0/16?)"},
		{cidr: "10.244.0.0/33", err: "not an IPv4 CIDR"},
		{cidr: "fd00::/64", err: "not an IPv4 CIDR"},
		{cidr: "banana", err: "not an IPv4 CIDR"},
	} {
		got, err := nodeSubnet(tc.cidr, tc.i)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.cidr, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s #%d = %s, %v; want %s", tc.cidr, tc.i, got, err, tc.want)
		}
	}
}

func TestNodeRole(t *testing.T) {
	m := &manifest.Manifest{NodeProfiles: []manifest.NodeProfile{{Name: "worker"}, {Name: "db"}},
		Installer: &manifest.Installer{Flavors: &manifest.Flavors{Items: []manifest.Flavor{
			{Name: "small", Nodes: []manifest.FlavorNode{{Profile: "db", Count: 1}}}}}}}
	withDefault := *m
	withDefault.Installer = &manifest.Installer{Flavors: &manifest.Flavors{Default: "small", Items: m.Installer.Flavors.Items}}
	for _, tc := range []struct {
		m            *manifest.Manifest
		role, flavor string
		want, err    string
	}{
		{m: &manifest.Manifest{}, want: "node"},
		{m: &manifest.Manifest{NodeProfiles: []manifest.NodeProfile{{Name: "only"}}}, want: "only"},
		{m: m, role: "worker", want: "worker"},
		{m: m, role: "nope", err: "no such node profile (it has worker, db)"},
		{m: m, flavor: "small", want: "db"},
		{m: m, flavor: "huge", err: "no such install flavor"},
		{m: m, err: "several node profiles (worker, db): choose this node's with --role or --flavor"},
		{m: &withDefault, want: "db"},
		{m: &manifest.Manifest{}, role: "nope", err: "no such node profile (it has node)"},
		{m: &manifest.Manifest{}, role: "node", want: "node"},
	} {
		got, err := nodeRole(tc.m, tc.role, tc.flavor)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q/%q: err %v, want %q", tc.role, tc.flavor, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q/%q = %q, %v; want %q", tc.role, tc.flavor, got, err, tc.want)
		}
	}
}

func TestRuntimeNode(t *testing.T) {
	c := testConfig()
	n, err := c.RuntimeNode(c.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	if !n.IsMaster() || n.NodePodCIDR != "10.244.0.0/24" || n.StateDir != "/var/lib/gravity" || len(n.MasterIPs) != 1 {
		t.Fatalf("%+v", n)
	}
	c.ServiceCIDR = "10.244.0.0/16" // overlaps the pod network
	if _, err := c.RuntimeNode(c.Nodes[0]); err == nil {
		t.Error("overlapping service and pod networks accepted")
	}
}

func TestCheckToken(t *testing.T) {
	for _, tc := range []struct{ token, err string }{
		{token: ""},
		{token: "6ab6d807010e"},
		{token: "a-long_token.v2"},
		{token: "x", err: "at least 12 characters"},
		{token: "has a space here", err: "' ' is not allowed"},
		{token: "tökentökentöken", err: "'ö' is not allowed"},
	} {
		err := checkToken(tc.token)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: err %v, want %q", tc.token, err, tc.err)
		}
	}
}

func TestInstallerAddr(t *testing.T) {
	one := []Node{{IP: "10.0.0.1"}}
	if got := installerAddr(one); got != "127.0.0.1:61009" {
		t.Errorf("one node: %s, want loopback", got)
	}
	if got := installerAddr(append(one, Node{IP: "10.0.0.2"})); got != "10.0.0.1:61009" {
		t.Errorf("two nodes: %s, want the first node's address", got)
	}
}

func TestPinnedImage(t *testing.T) {
	meta := &clusterimage.Meta{Images: []clusterimage.Item{
		{Ref: "registry.local:5000/alpine:3.3", Digest: "sha256:aaa"},
		{Ref: "registry.local:5000/gravitational/pause:0.1.0", Digest: "sha256:bbb"},
	}}
	if got := PinnedImage(meta, "registry.local:5000/gravitational/pause"); got != "registry.local:5000/gravitational/pause:0.1.0@sha256:bbb" {
		t.Errorf("pinned pause = %q", got)
	}
	if got := PinnedImage(meta, "registry.local:5000/gravitational/coredns"); got != "" {
		t.Errorf("an image the cluster image lacks: %q", got)
	}
}

func TestTokenTTL(t *testing.T) {
	for _, tc := range []struct {
		ttl  time.Duration
		want string
	}{
		{time.Minute, "must live at least 10m0s"},
		{-time.Hour, "must live at least"},
	} {
		_, err := newConfig(Options{CloudProvider: "generic", TokenTTL: tc.ttl}, &clusterimage.Meta{}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--token-ttl=%s: %v, want %q", tc.ttl, err, tc.want)
		}
	}
}

// The preflight port check covers every port the runtime's components
// listen on: a component added without its port would fail at start on a
// host the checks passed.
func TestPreflightCoversRuntimePorts(t *testing.T) {
	c := testConfig()
	rn, err := c.RuntimeNode(c.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	procs, err := node.Processes(rn, func(string, string, string) (*tls.Config, error) { return &tls.Config{}, nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		for _, port := range p.Ports {
			if !slices.Contains(preflight.DefaultPorts, port) {
				t.Errorf("%s listens on %d, which the preflight port check does not test", p.Name, port)
			}
		}
	}
}

// TestBootstrapFiles: the installer sends the CA set, keys included, to a
// master only.
func TestBootstrapFiles(t *testing.T) {
	dir := t.TempDir()
	c := Config{OperationID: "op", ClusterName: "c", StateDir: dir, Nodes: []Node{
		{IP: "10.0.0.1", Master: true}, {IP: "10.0.0.2"},
	}}
	cs, err := pki.NewCASet("c", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.Save(c.PKIDir(), false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		node, err string
	}{
		{"10.0.0.1", ""},
		{"10.0.0.2", "masters only"},
		{"10.0.0.3", "not part of operation"},
	} {
		files, err := bootstrapFiles(c, tc.node)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || files != nil {
				t.Errorf("%s: files %d, err %v; want %q", tc.node, len(files), err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.node, err)
		}
		if _, err := pki.ParseFiles(files); err != nil {
			t.Errorf("%s: the files are not the CA set: %v", tc.node, err)
		}
	}
}
