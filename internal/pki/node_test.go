package pki

import (
	"net"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

func mustCASet(t testing.TB) *CASet {
	t.Helper()
	cs, err := NewCASet("example", DefaultCAValidity, testNow)
	if err != nil {
		t.Fatalf("NewCASet: %v", err)
	}
	return cs
}

// want is one certificate as the brief specifies it, written out by hand
// rather than derived from nodeProfiles, so the test checks the table.
type want struct {
	ca    string // "cluster", "etcd", "front-proxy"
	cn    string
	org   []string
	dns   []string
	ips   string
	usage Usage
}

func workerWants(name, ip, hostname string) map[string]want {
	var kubeletDNS []string
	if hostname != "" {
		kubeletDNS = []string{hostname}
	}
	return map[string]want{
		KubeletClient:  {"cluster", "system:node:" + name, []string{"system:nodes"}, nil, "", UsageClient},
		KubeletServer:  {"cluster", "system:node:" + name, []string{"system:nodes"}, kubeletDNS, ip, UsageServer},
		KubeProxy:      {"cluster", "system:kube-proxy", nil, nil, "", UsageClient},
		RegistryClient: {"cluster", "registry-client:" + name, []string{"gravity:registry-clients"}, nil, "", UsageClient},
		Agent:          {"cluster", "gravity-agent:" + name, nil, nil, ip + ",127.0.0.1", UsageServer},
	}
}

func masterWants(name, ip, serviceIP, domain string) map[string]want {
	w := workerWants(name, ip, "")
	for k, v := range map[string]want{
		EtcdServer:          {"etcd", name, nil, []string{"localhost"}, ip + ",127.0.0.1", UsageBoth},
		EtcdPeer:            {"etcd", name, nil, []string{"localhost"}, ip + ",127.0.0.1", UsageBoth},
		APIServerEtcdClient: {"etcd", "kube-apiserver-etcd-client", nil, nil, "", UsageClient},
		APIServer: {"cluster", "kube-apiserver", nil, []string{"kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc." + domain, "localhost"}, ip + "," + serviceIP + ",127.0.0.1", UsageServer},
		APIServerKubeletClient: {"cluster", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil, "", UsageClient},
		FrontProxyClient:       {"front-proxy", "front-proxy-client", nil, nil, "", UsageClient},
		ControllerManager:      {"cluster", "system:kube-controller-manager", nil, nil, "", UsageClient},
		Scheduler:              {"cluster", "system:kube-scheduler", nil, nil, "", UsageClient},
		Admin:                  {"cluster", "admin", []string{"system:masters"}, nil, "", UsageClient},
		RegistryServer:         {"cluster", "registry.local", nil, []string{"registry.local", "localhost"}, ip + ",127.0.0.1", UsageServer},
		RegistryPusher:         {"cluster", "registry-pusher:" + name, []string{"gravity:registry-pushers"}, nil, "", UsageClient},
		CSRApprover:            {"cluster", "gravity:csr-approver", nil, nil, "", UsageClient},
		ClusterService:         {"cluster", "gravity-site", nil, []string{"localhost"}, ip + ",127.0.0.1", UsageServer},
		ClusterServiceClient:   {"cluster", "gravity:cluster-service", nil, nil, "", UsageClient},
		AgentClient:            {"cluster", "agent-client:" + name, []string{"gravity:agent-clients"}, nil, "", UsageClient},
	} {
		w[k] = v
	}
	return w
}

func TestNodeCerts(t *testing.T) {
	cs := mustCASet(t)
	cas := map[string]*CA{"cluster": cs.Cluster, "etcd": cs.Etcd, "front-proxy": cs.FrontProxy}
	for _, tc := range []struct {
		name  string
		node  Node
		wants map[string]want
	}{
		{"master", Node{Name: "10.0.0.1", IP: net.ParseIP("10.0.0.1"), Master: true, ServiceIP: net.ParseIP("10.100.0.1"), Now: testNow},
			masterWants("10.0.0.1", "10.0.0.1", "10.100.0.1", "cluster.local")},
		{"master custom domain", Node{Name: "10.0.0.2", IP: net.ParseIP("10.0.0.2"), Master: true, ServiceIP: net.ParseIP("10.96.0.1"),
			ClusterDomain: "corp.example", Now: testNow}, masterWants("10.0.0.2", "10.0.0.2", "10.96.0.1", "corp.example")},
		{"worker", Node{Name: "10.0.0.3", IP: net.ParseIP("10.0.0.3"), Now: testNow}, workerWants("10.0.0.3", "10.0.0.3", "")},
		{"worker with hostname", Node{Name: "10.0.0.4", IP: net.ParseIP("10.0.0.4"), Hostname: "node-4", Now: testNow},
			workerWants("10.0.0.4", "10.0.0.4", "node-4")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NodeCerts(cs, tc.node)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := sortedKeys(got), sortedKeys(tc.wants); !slices.Equal(g, w) {
				t.Fatalf("certificates %v, want %v", g, w)
			}
			for name, w := range tc.wants {
				checkCert(t, name, got[name], w, cas)
			}
		})
	}
}

func checkCert(t *testing.T, name string, kp *KeyPair, w want, cas map[string]*CA) {
	t.Helper()
	c := kp.Cert
	if c.Subject.CommonName != w.cn || !slices.Equal(c.Subject.Organization, w.org) {
		t.Errorf("%s: CN=%q O=%v, want CN=%q O=%v", name, c.Subject.CommonName, c.Subject.Organization, w.cn, w.org)
	}
	if !slices.Equal(c.DNSNames, w.dns) || ipStrings(c.IPAddresses) != w.ips {
		t.Errorf("%s: DNS=%v IPs=%s, want DNS=%v IPs=%s", name, c.DNSNames, ipStrings(c.IPAddresses), w.dns, w.ips)
	}
	if want := testNow.Add(DefaultCertValidity); !c.NotAfter.Equal(want) {
		t.Errorf("%s: NotAfter=%v, want %v", name, c.NotAfter, want)
	}
	if !keyMatches(c, kp.Key) {
		t.Errorf("%s: key does not match", name)
	}
	if err := cas[w.ca].Verify(c, w.usage, testNow); err != nil {
		t.Errorf("%s: %v", name, err)
	}
	// The right usage only: a client certificate must not serve, and the
	// other CAs of the same cluster must not accept it.
	if w.usage != UsageBoth {
		if err := cas[w.ca].Verify(c, UsageBoth^w.usage, testNow); err == nil {
			t.Errorf("%s: verifies for %v too", name, UsageBoth^w.usage)
		}
	}
	for other, ca := range cas {
		if other != w.ca && ca.Verify(c, w.usage, testNow) == nil {
			t.Errorf("%s: verifies against the %s CA too", name, other)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestNodeCertsErrors(t *testing.T) {
	cs := mustCASet(t)
	ip := net.ParseIP("10.0.0.1")
	for _, tc := range []struct {
		name string
		cs   *CASet
		node Node
		want string
	}{
		{"no CA set", nil, Node{Name: "n", IP: ip}, "incomplete CA set"},
		{"missing etcd CA", &CASet{Cluster: cs.Cluster, FrontProxy: cs.FrontProxy}, Node{Name: "n", IP: ip}, "incomplete CA set"},
		{"no name", cs, Node{IP: ip}, "empty node name"},
		{"no IP", cs, Node{Name: "n"}, "invalid advertise IP"},
		{"short IP", cs, Node{Name: "n", IP: net.IP{10, 0, 0}}, "invalid advertise IP"},
		{"master without service IP", cs, Node{Name: "n", IP: ip, Master: true}, "needs the service IP"},
		{"bad domain", cs, Node{Name: "n", IP: ip, Master: true, ServiceIP: ip, ClusterDomain: ".local"}, "invalid cluster domain"},
		{"outlives CA", cs, Node{Name: "n", IP: ip, Validity: 2 * DefaultCAValidity, Now: testNow}, "after its CA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NodeCerts(tc.cs, tc.node)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err=%v, want %q", err, tc.want)
			}
		})
	}
}

func TestNodeCertsDefaults(t *testing.T) {
	cs := mustCASet(t)
	before := time.Now()
	got, err := NodeCerts(cs, Node{Name: "10.0.0.9", IP: net.ParseIP("10.0.0.9")})
	if err != nil {
		t.Fatal(err)
	}
	notAfter := got[KubeletClient].Cert.NotAfter
	if notAfter.Before(before.Add(DefaultCertValidity).Truncate(time.Second)) || notAfter.After(time.Now().Add(DefaultCertValidity)) {
		t.Fatalf("NotAfter=%v, want now + %v", notAfter, DefaultCertValidity)
	}
}
