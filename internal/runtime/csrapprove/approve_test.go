package csrapprove

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"net"
	"strings"
	"testing"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opengravity/gravity/internal/kube/kubefake"
)

func node(name string, addrs ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, a := range addrs {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: a})
	}
	return n
}

type req struct {
	cn    string
	org   []string
	dns   []string
	ips   []string
	email []string
}

func request(t *testing.T, name, user string, groups []string, usages []certv1.KeyUsage, r req) *certv1.CertificateSigningRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: r.cn, Organization: r.org}, DNSNames: r.dns, EmailAddresses: r.email}
	for _, ip := range r.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return &certv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: certv1.CertificateSigningRequestSpec{SignerName: certv1.KubeletServingSignerName, Username: user, Groups: groups,
			Usages: usages, Request: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})}}
}

var (
	nodes   = []string{"system:nodes", "system:authenticated"}
	serving = []certv1.KeyUsage{certv1.UsageDigitalSignature, certv1.UsageKeyEncipherment, certv1.UsageServerAuth}
	self    = req{cn: "system:node:10.0.0.1", org: []string{"system:nodes"}, dns: []string{"node-1"}, ips: []string{"10.0.0.1"}}
)

func TestReview(t *testing.T) {
	n := node("10.0.0.1", "10.0.0.1", "node-1")
	with := func(f func(*req)) req { r := self; f(&r); return r }
	for _, tc := range []struct {
		name   string
		user   string
		groups []string
		usages []certv1.KeyUsage
		r      req
		node   *corev1.Node
		want   string // "" approves
	}{
		{"a node for itself", "system:node:10.0.0.1", nodes, serving, self, n, ""},
		{"by IP only", "system:node:10.0.0.1", nodes, serving, with(func(r *req) { r.dns = nil }), n, ""},
		{"another node's address", "system:node:10.0.0.1", nodes, serving, with(func(r *req) { r.ips = []string{"10.0.0.2"} }), n, "IP address 10.0.0.2"},
		{"a name it does not have", "system:node:10.0.0.1", nodes, serving, with(func(r *req) { r.dns = []string{"kubernetes.default"} }), n, "DNS name kubernetes.default"},
		{"for another node", "system:node:10.0.0.1", nodes, serving, with(func(r *req) { r.cn = "system:node:10.0.0.2" }), n, "is not the requesting node's"},
		{"not a node", "admin", []string{"system:masters"}, serving, self, n, "not by a node"},
		{"not in system:nodes", "system:node:10.0.0.1", []string{"system:authenticated"}, serving, self, n, "not by a node"},
		{"node unknown", "system:node:10.0.0.1", nodes, serving, self, nil, "does not exist"},
		{"client usage", "system:node:10.0.0.1", nodes, []certv1.KeyUsage{certv1.UsageServerAuth, certv1.UsageClientAuth}, self, n, "usage \"client auth\""},
		{"no server usage", "system:node:10.0.0.1", nodes, []certv1.KeyUsage{certv1.UsageDigitalSignature}, self, n, "not for server authentication"},
		{"an e-mail name", "system:node:10.0.0.1", nodes, serving, with(func(r *req) { r.email = []string{"a@b"} }), n, "e-mail"},
		{"no names", "system:node:10.0.0.1", nodes, serving, with(func(r *req) { r.dns, r.ips = nil, nil }), n, "names no address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Review(request(t, "csr", tc.user, tc.groups, tc.usages, tc.r), tc.node)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestOnce: pending kubelet-serving requests are approved or denied with
// the reason; other signers' and decided ones are left alone.
func TestOnce(t *testing.T) {
	good := request(t, "good", "system:node:10.0.0.1", nodes, serving, self)
	bad := request(t, "bad", "system:node:10.0.0.1", nodes, serving, req{cn: "system:node:10.0.0.1", org: []string{"system:nodes"}, ips: []string{"8.8.8.8"}})
	client := request(t, "client", "system:node:10.0.0.1", nodes, serving, self)
	client.Spec.SignerName = certv1.KubeAPIServerClientKubeletSignerName
	cs, _ := kubefake.NewClient(node("10.0.0.1", "10.0.0.1", "node-1"), good, bad, client)
	a := Approver{Client: cs, Log: slog.New(slog.DiscardHandler)}
	if err := a.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]certv1.RequestConditionType{"good": certv1.CertificateApproved, "bad": certv1.CertificateDenied, "client": ""} {
		csr, err := cs.CertificateSigningRequests().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var got certv1.RequestConditionType
		for _, c := range csr.Status.Conditions {
			got = c.Type
		}
		if got != want {
			t.Errorf("%s: %q, want %q (%+v)", name, got, want, csr.Status.Conditions)
		}
	}
	// A second round changes nothing.
	if err := a.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	csr, _ := cs.CertificateSigningRequests().Get(context.Background(), "good", metav1.GetOptions{})
	if len(csr.Status.Conditions) != 1 {
		t.Errorf("decided twice: %+v", csr.Status.Conditions)
	}
}
