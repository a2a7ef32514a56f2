package pki

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

func TestKubeconfigParsesBack(t *testing.T) {
	cs := mustCASet(t)
	certs, err := NodeCerts(cs, masterNode())
	if err != nil {
		t.Fatal(err)
	}
	const server = "https://10.0.0.1:6443"
	data, err := Kubeconfig(server, cs.Cluster.Cert, certs[Admin], "admin")
	if err != nil {
		t.Fatal(err)
	}
	// Plain YAML first: the schema as written.
	var raw kubeconfig
	if err := yaml.UnmarshalStrict(data, &raw); err != nil {
		t.Fatalf("parse back: %v\n%s", err, data)
	}
	if raw.APIVersion != "v1" || raw.Kind != "Config" || raw.CurrentContext != "admin@example" {
		t.Errorf("apiVersion=%q kind=%q current-context=%q", raw.APIVersion, raw.Kind, raw.CurrentContext)
	}
	// Then as kubectl reads it.
	cfg, err := clientcmd.Load(data)
	if err != nil {
		t.Fatalf("clientcmd: %v", err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || ctx.Cluster != "example" || ctx.AuthInfo != "admin" {
		t.Fatalf("current context %q = %+v", cfg.CurrentContext, ctx)
	}
	cluster, user := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
	if cluster.Server != server {
		t.Errorf("server=%q, want %q", cluster.Server, server)
	}
	if !bytes.Equal(cluster.CertificateAuthorityData, cs.Cluster.CertPEM()) {
		t.Error("certificate-authority-data is not the cluster CA")
	}
	kp, err := ParseKeyPair(user.ClientCertificateData, user.ClientKeyData)
	if err != nil {
		t.Fatalf("embedded client pair: %v", err)
	}
	if !bytes.Equal(kp.Cert.Raw, certs[Admin].Cert.Raw) {
		t.Error("client-certificate-data is not the admin certificate")
	}
}

// TestKubeconfigConnects uses the kubeconfig the way kubectl would, against
// a loopback HTTPS server that presents the apiserver certificate and
// demands a client certificate from the cluster CA.
func TestKubeconfigConnects(t *testing.T) {
	now := time.Now()
	cs, err := NewCASet("example", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	node := Node{Name: "127.0.0.1", IP: net.IPv4(127, 0, 0, 1), Master: true, ServiceIP: net.IPv4(10, 100, 0, 1),
		Validity: 30 * time.Minute, Now: now}
	certs, err := NodeCerts(cs, node)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := r.TLS.PeerCertificates[0]
		io.WriteString(w, c.Subject.CommonName+"/"+strings.Join(c.Subject.Organization, ","))
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{certs[APIServer].TLSCertificate()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    cs.Cluster.Pool(),
	}
	srv.StartTLS()
	defer srv.Close()

	data, err := Kubeconfig(srv.URL, cs.Cluster.Cert, certs[Admin], "admin")
	if err != nil {
		t.Fatal(err)
	}
	restCfg, err := clientcmd.RESTConfigFromKubeConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	client, err := rest.HTTPClientFor(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(srv.URL + "/whoami")
	if err != nil {
		t.Fatalf("request with the kubeconfig: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(body); got != "admin/system:masters" {
		t.Fatalf("server saw %q, want admin/system:masters", got)
	}
}

func TestKubeconfigErrors(t *testing.T) {
	cs := mustCASet(t)
	certs, err := NodeCerts(cs, masterNode())
	if err != nil {
		t.Fatal(err)
	}
	kp := certs[Admin]
	for _, tc := range []struct {
		name, server, user string
		kp                 *KeyPair
		nilCA              bool
		want               string
	}{
		{"plain http", "http://10.0.0.1:6443", "admin", kp, false, "want https"},
		{"no host", "https://", "admin", kp, false, "want https"},
		{"unparsable", "https://[::1", "admin", kp, false, "server"},
		{"no CA", "https://10.0.0.1:6443", "admin", kp, true, "missing CA"},
		{"no key pair", "https://10.0.0.1:6443", "admin", nil, false, "missing CA certificate or client key pair"},
		{"no user", "https://10.0.0.1:6443", "", kp, false, "empty user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := cs.Cluster.Cert
			if tc.nilCA {
				ca = nil
			}
			_, err := Kubeconfig(tc.server, ca, tc.kp, tc.user)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err=%v, want %q", err, tc.want)
			}
		})
	}
}
