package clusterapi

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/kube"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/runtime/config"
)

type fixture struct {
	api     *API
	clients cluster.Clients
	cas     *pki.CASet
	addr    string
	now     time.Time
}

// newFixture serves the API on loopback for a cluster "c" of one master,
// 10.0.0.1, whose objects live in a fake of the Kubernetes API.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	// No typed kinds: every object stays unstructured, as the API's own
	// writes make them.
	gvr := func(group, version, resource string) schema.GroupVersionResource {
		return schema.GroupVersionResource{Group: group, Version: version, Resource: resource}
	}
	lists := map[schema.GroupVersionResource]string{gvr("", "v1", "nodes"): "NodeList", gvr("", "v1", "secrets"): "SecretList",
		gvr("", "v1", "pods"): "PodList"}
	for _, kind := range []string{"User", "Role", "AuthGateway", "AuthPreference", "AuditEvent", "Operation", "Cluster"} {
		lists[gvr(cluster.Group, cluster.Version, map[string]string{"User": "users", "Role": "roles", "AuthGateway": "authgateways",
			"AuthPreference": "authpreferences", "AuditEvent": "auditevents", "Operation": "operations", "Cluster": "clusters"}[kind])] = kind + "List"
	}
	dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), lists)
	k, err := kube.NewForDynamic(dc, nil)
	if err != nil {
		t.Fatal(err)
	}
	master := &corev1.Node{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
		ObjectMeta: metav1.ObjectMeta{Name: "10.0.0.1", Labels: map[string]string{"node-role.kubernetes.io/control-plane": ""}}}
	if _, err := k.Nodes().Create(context.Background(), master, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cas, err := pki.NewCASet("c", pki.DefaultCAValidity, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{clients: cluster.Clients{Kube: k, Dynamic: dc}, cas: cas, now: time.Now()}
	kp, err := cas.Cluster.Issue(pki.Request{CommonName: "gravity-site", IPs: []net.IP{net.ParseIP("127.0.0.1")},
		Validity: time.Hour, Usages: pki.UsageServer})
	if err != nil {
		t.Fatal(err)
	}
	cert := kp.TLSCertificate()
	f.api, err = New(Config{Clients: f.clients, CAs: cas, Self: config.Node{IP: net.ParseIP("10.0.0.1"), ClusterName: "c"},
		Certificate: &cert, NodeProbe: func(context.Context, string) error { return nil }, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	f.api.Routes(mux)
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: cas.Cluster.Pool(),
		ClientAuth: tls.VerifyClientCertIfGiven}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	f.addr = srv.Listener.Addr().String()
	return f
}
