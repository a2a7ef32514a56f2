package config

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
)

var (
	ipv4Re = regexp.MustCompile(`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`)
	// urlHostRe finds the host of scheme://host and of image references
	// (host:port/...).
	urlHostRe   = regexp.MustCompile(`[a-z][a-z0-9+.-]*://\[?([^/:"'\s\]\[,]+)`)
	imageHostRe = regexp.MustCompile(`(?:^|[\s"'=])([a-z0-9.-]+\.[a-z0-9.-]+):\d+/`)
	// domainRe finds host-like names with a public top-level domain.
	domainRe = regexp.MustCompile(`\b((?:[a-z0-9-]+\.)+(?:io|com|net|org|dev|cloud|sh|co|us|de|cn))\b`)
	// apiGroupRe matches Kubernetes API versions and containerd's reverse
	// DNS plugin IDs, which look like domains but are never resolved.
	// API versions (group/version), API groups named as such (an audit
	// policy's "group:") and containerd's plugin ids look like host names.
	apiGroupRe = regexp.MustCompile(`\b[a-z0-9.-]+\.(?:k8s\.io|x-k8s\.io)/v[0-9a-z]+\b|\bgroup: [a-z0-9.-]+\.k8s\.io\b|\bio\.containerd\.[a-z0-9.-]+`)
)

// airGapCheck lists every address or host name in text that is not one of
// n's own: its IP and the masters', loopback, the pod and service networks,
// registry.local, localhost and cluster-domain names, and the DNS
// upstreams the user asked for.
func airGapCheck(n Node, text string) []string {
	allowedIPs := map[string]bool{"127.0.0.1": true}
	for _, ip := range append([]net.IP{n.IP}, n.MasterIPs...) {
		allowedIPs[ip.String()] = true
	}
	for _, u := range n.DNSUpstreams {
		host, _, err := net.SplitHostPort(u)
		if err != nil {
			host = u
		}
		allowedIPs[host] = true
	}
	_, pod, _ := net.ParseCIDR(n.PodCIDR)
	_, svc, _ := net.ParseCIDR(n.ServiceCIDR)
	var bad []string
	// The pods' default route is the only unspecified address allowed.
	text = strings.ReplaceAll(text, `"0.0.0.0/0"`, `"default"`)
	for _, s := range ipv4Re.FindAllString(text, -1) {
		ip := net.ParseIP(s)
		if allowedIPs[s] || ip != nil && (pod.Contains(ip) || svc.Contains(ip)) {
			continue
		}
		bad = append(bad, s)
	}
	hostOK := func(h string) bool {
		if net.ParseIP(h) != nil {
			return allowedIPs[h] || pod.Contains(net.ParseIP(h)) || svc.Contains(net.ParseIP(h))
		}
		return h == "registry.local" || h == "localhost" || strings.HasSuffix(h, "."+n.ClusterDomain)
	}
	for _, re := range []*regexp.Regexp{urlHostRe, imageHostRe} {
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			if !hostOK(m[1]) {
				bad = append(bad, m[1])
			}
		}
	}
	for _, d := range domainRe.FindAllString(apiGroupRe.ReplaceAllString(text, ""), -1) {
		if !hostOK(d) {
			bad = append(bad, d)
		}
	}
	return bad
}

// TestAirGapChecker proves the checker can fail.
func TestAirGapChecker(t *testing.T) {
	n, _ := testMaster().WithDefaults()
	for _, text := range []string{
		"forward . 8.8.8.8",
		`sandbox = "registry.k8s.io/pause:3.10"`,
		`image: docker.io/library/busybox`,
		`server = "https://registry-1.docker.io"`,
		`endpoint = ["https://mirror.gcr.io"]`,
		`sandbox = "quay.io:443/x/pause"`,
		`"dst": "0.0.0.0/8"`,
		`server: https://10.0.0.1:6443`,
		"- group: rbac.authorization.example.com",
	} {
		if bad := airGapCheck(n, text); len(bad) == 0 {
			t.Errorf("checker missed the outside address in %q", text)
		}
	}
	for _, text := range []string{
		"--etcd-servers=https://127.0.0.1:2379",
		"apiVersion: kubelet.config.k8s.io/v1beta1",
		`[plugins."io.containerd.cri.v1.images"]`,
		"https://kubernetes.default.svc.cluster.local",
		`sandbox = "registry.local:5000/gravitational/pause:0.1.0"`,
		"nameserver 10.100.0.10",
		"- group: rbac.authorization.k8s.io",
		`[host."https://192.0.2.11:5000"]`,
	} {
		if bad := airGapCheck(n, text); len(bad) != 0 {
			t.Errorf("checker flagged %v in %q", bad, text)
		}
	}
}

// TestAirGap scans everything generated for a master and a worker: no
// component may be configured with an address outside the cluster.
func TestAirGap(t *testing.T) {
	for name, n := range map[string]Node{"master": testMaster(), "worker": testWorker()} {
		t.Run(name, func(t *testing.T) {
			a, err := generate(n)
			if err != nil {
				t.Fatal(err)
			}
			n, _ = n.WithDefaults()
			for path, data := range a.files {
				if bad := airGapCheck(n, path+"\n"+string(data)); len(bad) > 0 {
					t.Errorf("%s points outside the cluster: %v", path, bad)
				}
			}
			for comp, args := range a.args {
				if bad := airGapCheck(n, strings.Join(args, "\n")); len(bad) > 0 {
					t.Errorf("%s args point outside the cluster: %v", comp, bad)
				}
			}
		})
	}
}

func TestCorefileForward(t *testing.T) {
	tests := []struct {
		upstreams []string
		want      string // the forward line, or "" for none
	}{
		{nil, ""},
		{[]string{}, ""},
		{[]string{"192.0.2.53"}, "forward . 192.0.2.53 {"},
		{[]string{"192.0.2.53", "198.51.100.53:5353"}, "forward . 192.0.2.53 198.51.100.53:5353 {"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.upstreams), func(t *testing.T) {
			n := testMaster()
			n.DNSUpstreams = tc.upstreams
			out, err := Corefile(n)
			if err != nil {
				t.Fatal(err)
			}
			text := string(out)
			if tc.want == "" && strings.Contains(text, "forward") {
				t.Fatalf("forward without upstreams:\n%s", text)
			}
			if tc.want != "" && !strings.Contains(text, tc.want) {
				t.Fatalf("no %q in:\n%s", tc.want, text)
			}
			if tc.want == "" && !strings.Contains(text, "rcode NXDOMAIN") {
				t.Errorf("names outside the cluster are not refused:\n%s", text)
			}
			if (tc.want != "") != strings.Contains(text, "loop") {
				t.Errorf("loop detection without a forward, or a forward without it:\n%s", text)
			}
			for _, want := range []string{"errors", "health", "ready", "cache 30", "reload",
				"kubernetes cluster.local", "192.0.2.10 registry.local", "192.0.2.11 registry.local"} {
				if !strings.Contains(text, want) {
					t.Errorf("no %q in Corefile", want)
				}
			}
			if strings.Count(text, "{") != strings.Count(text, "}") {
				t.Errorf("unbalanced braces:\n%s", text)
			}
			nd, _ := n.WithDefaults()
			if bad := airGapCheck(nd, text); len(bad) > 0 {
				t.Errorf("Corefile points outside: %v", bad)
			}
		})
	}
}
