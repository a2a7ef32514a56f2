package node

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/runtime/config"
)

func TestProbes(t *testing.T) {
	m := testMaster(t)
	p := m.Paths()
	files := func(ca, pair string) Probe {
		return Probe{CA: p.Cert(ca), Cert: p.Cert(pair), Key: p.Key(pair)}
	}
	with := func(pr Probe, url string) Probe { pr.URL = url; return pr }
	want := map[string]Probe{
		Etcd:              with(files(pki.EtcdCAName, pki.APIServerEtcdClient), "https://127.0.0.1:2379/health"),
		APIServer:         with(files(pki.ClusterCAName, pki.Admin), "https://192.0.2.10:6443/readyz"),
		ControllerManager: {URL: "tcp://127.0.0.1:10257"},
		Scheduler:         {URL: "tcp://127.0.0.1:10259"},
		Containerd:        {URL: "unix://" + p.ContainerdSocket},
		Kubelet:           {URL: "http://127.0.0.1:10248/healthz"},
		KubeProxy:         {URL: "http://127.0.0.1:10256/healthz"},
		PodNetwork:        {URL: "http://127.0.0.1:10263/healthz"},
		Registry:          {URL: "unix://" + p.RegistrySocket},
		RegistryGate:      with(files(pki.ClusterCAName, pki.RegistryClient), "https://192.0.2.10:5000/v2/"),
		CSRApprover:       {URL: "http://127.0.0.1:10264/healthz"},
		ClusterService:    with(files(pki.ClusterCAName, pki.RegistryClient), "https://192.0.2.10:3009/healthz"),
		Agent:             {URL: "http://127.0.0.1:10265/healthz"},
		AccessProxy:       {URL: "http://127.0.0.1:10266/healthz"},
		SSH:               {URL: "http://127.0.0.1:10267/healthz"},
	}
	got, err := Probes(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("probes for %d processes, want %d", len(got), len(want))
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: probe\n%+v\nwant\n%+v", name, got[name], w)
		}
	}
	w, err := Probes(testWorker(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 7 || w[Kubelet] != want[Kubelet] || w[APILB] != (Probe{URL: "tcp://127.0.0.1:6443"}) {
		t.Errorf("worker probes %+v", w)
	}
}

// The health endpoints kubelet and kube-proxy are probed at are the ones
// their generated configs bind.
func TestProbesMatchConfig(t *testing.T) {
	n := testMaster(t)
	kubelet, err := config.KubeletConfig(n)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(kubelet), "healthzBindAddress: 127.0.0.1\n") || !strings.Contains(string(kubelet), "healthzPort: 10248\n") {
		t.Errorf("kubelet config does not bind healthz at 127.0.0.1:10248:\n%s", kubelet)
	}
	proxy, err := config.KubeProxyConfig(n)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(proxy), "healthzBindAddress: 127.0.0.1:10256\n") {
		t.Errorf("kube-proxy config does not bind healthz at 127.0.0.1:10256:\n%s", proxy)
	}
}

// mtlsServer serves 200 on 127.0.0.1 with the server pair and requires a
// client certificate from clientCA, as etcd and the registry do.
func mtlsServer(t *testing.T, n config.Node, serverPair, clientCA string) *httptest.Server {
	t.Helper()
	dir := n.Paths().PKI
	kp, err := pki.LoadKeyPair(dir, serverPair)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(dir, clientCA)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{kp.TLSCertificate()}, ClientCAs: ca.Pool(),
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// The probes' TLS works against servers with the node's certificates, and
// fails with the wrong CA or without a client certificate the server
// trusts.
func TestHTTPSProbes(t *testing.T) {
	n := bootstrapped(t)
	p := n.Paths()
	etcd := mtlsServer(t, n, pki.EtcdServer, pki.EtcdCAName)
	registry := mtlsServer(t, n, pki.RegistryServer, pki.ClusterCAName)
	pair := func(ca, name string) Probe { return Probe{CA: p.Cert(ca), Cert: p.Cert(name), Key: p.Key(name)} }
	tests := []struct {
		name  string
		url   string
		probe Probe
		ok    bool
	}{
		{"etcd", etcd.URL + "/health", pair(pki.EtcdCAName, pki.APIServerEtcdClient), true},
		{"registry", registry.URL + "/v2/", pair(pki.ClusterCAName, pki.RegistryClient), true},
		{"etcd with the cluster CA", etcd.URL + "/health", pair(pki.ClusterCAName, pki.APIServerEtcdClient), false},
		{"etcd with a cluster client", etcd.URL + "/health", pair(pki.EtcdCAName, pki.Admin), false},
		{"registry with an etcd client", registry.URL + "/v2/", pair(pki.ClusterCAName, pki.APIServerEtcdClient), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.probe.URL = tt.url
			probe, err := tt.probe.Func(LoadTLS)
			if err != nil {
				t.Fatal(err)
			}
			err = probe(timeout(t))
			if tt.ok != (err == nil) {
				t.Errorf("probe: %v, want success %v", err, tt.ok)
			}
		})
	}
}

func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestLoadTLS(t *testing.T) {
	n := bootstrapped(t)
	p := n.Paths()
	cfg, err := LoadTLS(p.Cert(pki.ClusterCAName), p.Cert(pki.Admin), p.Key(pki.Admin))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.InsecureSkipVerify || cfg.RootCAs == nil || len(cfg.Certificates) != 1 {
		t.Fatalf("config %+v", cfg)
	}
	leaf := cfg.Certificates[0].Leaf
	if leaf == nil || leaf.Subject.CommonName != "admin" {
		t.Errorf("client certificate %v, want admin's", leaf)
	}
	bad := []struct{ name, ca, cert, key string }{
		{"missing CA", filepath.Join(t.TempDir(), "ca.crt"), p.Cert(pki.Admin), p.Key(pki.Admin)},
		{"CA not PEM", p.Kubeconfig(config.KubeconfigAdmin), p.Cert(pki.Admin), p.Key(pki.Admin)},
		{"mismatched key", p.Cert(pki.ClusterCAName), p.Cert(pki.Admin), p.Key(pki.Scheduler)},
	}
	for _, b := range bad {
		if _, err := LoadTLS(b.ca, b.cert, b.key); err == nil {
			t.Errorf("%s: no error", b.name)
		}
	}
}

func TestUnixAndTCPProbes(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "c.sock")
	unix, err := Probe{URL: "unix://" + sock}.Func(LoadTLS)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix(timeout(t)); err == nil {
		t.Error("unix probe passed before the socket exists")
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := unix(timeout(t)); err != nil {
		t.Errorf("unix probe: %v", err)
	}
	// A port that was just closed is as good as any closed loopback port.
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := tl.Addr().String()
	tcp, err := Probe{URL: "tcp://" + addr}.Func(LoadTLS)
	if err != nil {
		t.Fatal(err)
	}
	if err := tcp(timeout(t)); err != nil {
		t.Errorf("tcp probe of a listening port: %v", err)
	}
	tl.Close()
	if err := tcp(timeout(t)); err == nil {
		t.Error("tcp probe of a closed port passed")
	}
	if _, err := (Probe{URL: "ftp://127.0.0.1/"}).Func(LoadTLS); err == nil {
		t.Error("unknown scheme: no error")
	}
}
