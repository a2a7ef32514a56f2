package accessproxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"golang.org/x/crypto/ssh"

	"github.com/opengravity/gravity/internal/access"
	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/kube"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/resources"
)

// The Kubernetes proxy passes a request on as the user the certificate
// names, with the groups their roles give now, whatever the client says;
// a user removed or made again is refused.
func TestKubeHandler(t *testing.T) {
	ctx := context.Background()
	gvr := func(group, version, resource string) schema.GroupVersionResource {
		return schema.GroupVersionResource{Group: group, Version: version, Resource: resource}
	}
	dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		gvr("", "v1", "secrets"): "SecretList", gvr(cluster.Group, cluster.Version, "users"): "UserList",
		gvr(cluster.Group, cluster.Version, "roles"): "RoleList", gvr(cluster.Group, cluster.Version, "auditevents"): "AuditEventList"})
	k, err := kube.NewForDynamic(dc, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := cluster.Clients{Kube: k, Dynamic: dc}
	put := func(r resources.Resource) {
		if err := cluster.PutResource(ctx, c, r, false); err != nil {
			t.Fatal(err)
		}
	}
	put(resources.Resource{Kind: resources.KindRole, Version: "v3", Metadata: resources.Metadata{Name: "ops"},
		Spec: &resources.RoleSpec{Allow: resources.Conditions{KubernetesGroups: []string{"ops-group", "view"}}}})
	put(resources.Resource{Kind: resources.KindUser, Version: "v2", Metadata: resources.Metadata{Name: "alice"},
		Spec: &resources.UserSpec{Type: resources.UserRegular, Roles: []string{"ops"}}})
	users := dc.Resource(gvr(cluster.Group, cluster.Version, "users"))
	u, _ := users.Get(ctx, "alice", metav1.GetOptions{})
	u.SetUID(types.UID("uid-1"))
	if _, err := users.Update(ctx, u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA("users", 24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{cfg: Config{Clients: c, Log: slog.Default(), Now: time.Now}, users: ca}
	var seen http.Header
	h := p.kubeHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.Header.Clone() }))
	certFor := func(uid string) *x509.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		pub, _ := ssh.NewPublicKey(key.Public())
		_, x, err := access.SignUser(ca, pub, access.User{Name: "alice", UID: uid, Logins: []string{"root"}, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	call := func(cert *x509.Certificate) *httptest.ResponseRecorder {
		seen = nil
		r := httptest.NewRequest(http.MethodGet, "/api/v1/nodes", nil)
		r.Header.Set("Impersonate-User", "admin")
		r.Header.Set("Impersonate-Group", "system:masters")
		r.Header.Set("Authorization", "Bearer stolen")
		r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	call(certFor("uid-1"))
	if seen == nil {
		t.Fatal("the request was not passed on")
	}
	if got := seen.Get("Impersonate-User"); got != "alice" {
		t.Errorf("Impersonate-User %q", got)
	}
	if got := strings.Join(seen.Values("Impersonate-Group"), ","); got != "ops-group,view" {
		t.Errorf("Impersonate-Group %q", got)
	}
	if seen.Get("Authorization") != "" {
		t.Error("the client's Authorization header was passed on")
	}
	// A certificate of an earlier record of the same name.
	if w := call(certFor("uid-0")); w.Code != http.StatusUnauthorized || seen != nil || !strings.Contains(w.Body.String(), "no longer exists") {
		t.Errorf("an old record's certificate: %d %s", w.Code, w.Body)
	}
	if err := cluster.DeleteResource(ctx, c, resources.KindUser, "alice"); err != nil {
		t.Fatal(err)
	}
	if w := call(certFor("uid-1")); w.Code != http.StatusUnauthorized || seen != nil {
		t.Errorf("a removed user's certificate: %d %s", w.Code, w.Body)
	}
}
