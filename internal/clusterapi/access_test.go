package clusterapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"golang.org/x/crypto/ssh"

	"github.com/opengravity/gravity/internal/access"
	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/pki"
)

const opsDoc = `kind: role
version: v3
metadata: {name: ops}
spec:
  allow:
    logins: [root, ops]
    node_labels: {"*": "*"}
    rules: [{resources: [node], verbs: [list]}]
  options: {max_session_ttl: 2h}
---
kind: user
version: v2
metadata: {name: bob}
spec: {type: regular, roles: [ops], password: bob-password-12}
`

func TestCertificates(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.create(t, opsDoc, false); err != nil {
		t.Fatal(err)
	}
	// The fake API server gives objects no UID; a real one always does.
	users := f.clients.Dynamic.Resource(schema.GroupVersionResource{Group: cluster.Group, Version: cluster.Version, Resource: "users"})
	u, err := users.Get(ctx, "bob", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	u.SetUID(types.UID("uid-bob-1"))
	if _, err := users.Update(ctx, u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var sess SessionResponse
	if err := f.client(t, "", "").Do(ctx, http.MethodPost, PathSessions, LoginRequest{User: "bob", Password: "bob-password-12"}, &sess); err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := ssh.NewPublicKey(key.Public())
	req := CertsRequest{PublicKey: string(ssh.MarshalAuthorizedKey(pub))}
	var certs CertsResponse
	if err := f.bearer(t, sess.Token).Do(ctx, http.MethodPost, PathCerts, req, &certs); err != nil {
		t.Fatal(err)
	}
	k, err := access.ParseAuthorizedKey(certs.SSHCertificate)
	if err != nil {
		t.Fatal(err)
	}
	cert := k.(*ssh.Certificate)
	if cert.KeyId != "bob" || strings.Join(cert.ValidPrincipals, ",") != "root,ops" || cert.Extensions[access.ExtUserUID] != "uid-bob-1" {
		t.Errorf("SSH certificate: id %q principals %v extensions %v", cert.KeyId, cert.ValidPrincipals, cert.Extensions)
	}
	if ttl := time.Until(certs.Expires); ttl > 2*time.Hour || ttl < 119*time.Minute {
		t.Errorf("certificates last %v, want the role's 2h", ttl)
	}
	x, err := pki.ParseCertificatePEM([]byte(certs.TLSCertificate))
	if err != nil {
		t.Fatal(err)
	}
	if name, uid, err := access.X509User(x); name != "bob" || uid != "uid-bob-1" || err != nil {
		t.Errorf("x509 certificate names %q %q (%v)", name, uid, err)
	}
	if x.Issuer.CommonName == f.cas.Cluster.Cert.Subject.CommonName {
		t.Error("the user's x509 certificate is signed by the cluster CA")
	}

	nodeName := "system:node:10.0.0.1"
	for _, tc := range []struct {
		name   string
		client *Client
		want   string
	}{
		{"the node itself", f.client(t, pki.SystemNodes, nodeName), ""},
		{"another node's name", f.client(t, pki.SystemNodes, "system:node:10.9.9.9"), "not in the cluster"},
		{"a master's admin", f.admin(t), "issued to nodes only"},
		{"a user", f.bearer(t, sess.Token), "issued to nodes only"},
		{"anonymous", f.client(t, "", ""), "authentication required"},
	} {
		t.Run("host certificate/"+tc.name, func(t *testing.T) {
			var resp HostCertResponse
			err := tc.client.Do(ctx, http.MethodPost, PathHostCert, HostCertRequest{PublicKey: req.PublicKey}, &resp)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("err = %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			k, _ := access.ParseAuthorizedKey(resp.Certificate)
			if hc := k.(*ssh.Certificate); hc.CertType != ssh.HostCert || hc.ValidPrincipals[0] != "10.0.0.1" {
				t.Errorf("host certificate %+v", hc)
			}
			if resp.HostCA != certs.HostCA {
				t.Error("the node is told another hosts CA than users are")
			}
		})
	}
	if err := f.admin(t).Do(ctx, http.MethodPost, PathCerts, req, &certs); err == nil || !strings.Contains(err.Error(), "issued to users only") {
		t.Errorf("certificates for a master's admin certificate: %v", err)
	}
	var nodes []NodeInfo
	if err := f.bearer(t, sess.Token).Do(ctx, http.MethodGet, PathNodes, nil, &nodes); err != nil || len(nodes) != 1 || nodes[0].Name != "10.0.0.1" {
		t.Errorf("nodes = %+v, %v", nodes, err)
	}
	var ping PingResponse
	if err := f.client(t, "", "").Do(ctx, http.MethodGet, PathPing, nil, &ping); err != nil || ping.Cluster != "c" || ping.ProxyKind != ProxyKind {
		t.Errorf("ping = %+v, %v", ping, err)
	}
}
