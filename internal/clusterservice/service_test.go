package clusterservice

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/jointoken"
	"github.com/opengravity/gravity/internal/kube"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/store"
)

const testToken = "the-join-token-1"

type fixture struct {
	svc     *Service
	clients cluster.Clients
	cas     *pki.CASet
	addr    string
	now     time.Time
}

// newFixture runs a service on loopback for a cluster of one master,
// 10.0.0.1 (pod subnet 10.244.0.0/24), with a runtime package to serve.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	// No typed kinds: every object stays unstructured, as the service's
	// own writes make them (the fake converts a mix of both badly).
	scheme := runtime.NewScheme()
	core := func(r string) schema.GroupVersionResource {
		return schema.GroupVersionResource{Version: "v1", Resource: r}
	}
	master := &corev1.Node{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"}, ObjectMeta: metav1.ObjectMeta{Name: "10.0.0.1",
		Labels: map[string]string{labelControlPlane: "", cluster.LabelRole: "node", cluster.LabelHostname: "node-1"}}}
	secret := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: metav1.ObjectMeta{Name: "gravity-join-token", Namespace: cluster.Namespace},
		Data: map[string][]byte{"token": []byte(testToken)}}
	dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{
		cluster.OperationsResource: "OperationList", cluster.ClustersResource: "ClusterList",
		core("nodes"): "NodeList", core("secrets"): "SecretList", core("configmaps"): "ConfigMapList", core("pods"): "PodList"})
	k, err := kube.NewForDynamic(dc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Nodes().Create(ctx, master, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Secrets(cluster.Namespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	clients := cluster.Clients{Kube: k, Dynamic: dc}
	if err := cluster.SaveInfo(ctx, clients, cluster.Info{Name: "c", State: "active", App: "app", AppVersion: "0.0.1"}); err != nil {
		t.Fatal(err)
	}
	cas, err := pki.NewCASet("c", pki.DefaultCAValidity, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutPackage(ctx, RuntimePackage+":0.1.0", store.PackageMeta{Name: "runtime", Version: "0.1.0"}, tarOf(t, "bin/kube", "x")); err != nil {
		t.Fatal(err)
	}
	self, err := config.Node{IP: net.ParseIP("10.0.0.1"), ClusterName: "c", MasterIPs: []net.IP{net.ParseIP("10.0.0.1")}, StateDir: t.TempDir(),
		Roles: []string{config.RoleMaster, config.RoleNode}, NodePodCIDR: "10.244.0.0/24"}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{clients: clients, cas: cas, now: time.Now()}
	f.svc, err = New(Config{CAs: cas, Clients: clients, Self: self, Packages: st, Version: "0.1.0",
		Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := cas.Cluster.Issue(pki.Request{CommonName: "gravity-site", IPs: []net.IP{net.ParseIP("127.0.0.1")},
		Validity: time.Hour, Usages: pki.UsageServer})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(f.svc.Handler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{kp.TLSCertificate()}, ClientCAs: cas.Cluster.Pool(),
		ClientAuth: tls.VerifyClientCertIfGiven}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	f.addr = srv.Listener.Addr().String()
	return f
}

func tarOf(t *testing.T, name, data string) *bytes.Reader {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write([]byte(data))
	_ = tw.Close()
	return bytes.NewReader(b.Bytes())
}

func worker(ip, host string) JoinRequest {
	no := false
	return JoinRequest{IP: ip, Hostname: host, Version: "0.1.0", Master: &no}
}

func TestJoinFlow(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if _, err := Discover(ctx, f.addr, "a-wrong-token"); !errors.Is(err, jointoken.ErrInvalidToken) {
		t.Fatalf("wrong token: %v", err)
	}
	c, err := Discover(ctx, f.addr, testToken)
	if err != nil {
		t.Fatal(err)
	}

	// Refused, with the reason, and nothing recorded.
	old := worker("10.0.0.2", "node-2")
	old.Version = "0.0.9"
	for _, tc := range []struct {
		name string
		req  JoinRequest
		want string
	}{
		{"other version", old, "this gravity is version 0.0.9 and the cluster runs 0.1.0"},
		{"duplicate address", worker("10.0.0.1", "node-9"), "a node with address 10.0.0.1 is already in the cluster"},
		{"duplicate hostname", worker("10.0.0.9", "node-1"), "a node with hostname node-1 is already in the cluster"},
		{"bad address", worker("banana", "node-2"), `advertise address "banana" is not an IPv4 address`},
		{"bad hostname", worker("10.0.0.2", "-x"), `hostname "-x"`},
	} {
		if _, err := c.Join(ctx, tc.req); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	if ops, _ := cluster.Operations(ctx, f.clients); len(ops) != 0 {
		t.Fatalf("refused joins recorded operations: %d", len(ops))
	}

	// Two workers at once, each with its own subnet.
	a, err := c.Join(ctx, worker("10.0.0.2", "node-2"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Join(ctx, worker("10.0.0.3", "node-3"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Node.Self.PodSubnet != "10.244.1.0/24" || b.Node.Self.PodSubnet != "10.244.2.0/24" {
		t.Fatalf("subnets %s, %s", a.Node.Self.PodSubnet, b.Node.Self.PodSubnet)
	}
	if a.Node.BaseVersion != "0.1.0" || len(a.Node.Masters) != 1 || a.Node.Masters[0].IP != "10.0.0.1" {
		t.Fatalf("node config %+v", a.Node)
	}
	if info, _ := cluster.LoadInfo(ctx, f.clients); info.State != "expanding" {
		t.Fatalf("cluster state %q while joins are open", info.State)
	}
	if _, err := c.Join(ctx, worker("10.0.0.2", "node-2")); err == nil || !strings.Contains(err.Error(), "is joining already") {
		t.Fatalf("second join of the same node: %v", err)
	}

	// Certificates for the node's own keys, with the names the cluster
	// knows it by.
	names, _ := pki.NodeCertNames(pki.Node{Name: "10.0.0.2", IP: net.ParseIP("10.0.0.2")})
	keys, err := pki.NewNodeRequests(names)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := c.Certs(ctx, a.OperationID, keys.CSRs)
	if err != nil {
		t.Fatal(err)
	}
	pairs, err := keys.Complete(certs.Certs)
	if err != nil {
		t.Fatal(err)
	}
	if cn := pairs[pki.KubeletClient].Cert.Subject.CommonName; cn != "system:node:10.0.0.2" {
		t.Fatalf("kubelet client CN %q", cn)
	}
	if _, err := c.Certs(ctx, "nope", keys.CSRs); err == nil {
		t.Fatal("certificates for an operation that does not exist")
	}

	// The runtime package, blob by blob, verified.
	local, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.FetchPackage(ctx, local, RuntimePackage+":0.1.0"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := local.PackageLayers(RuntimePackage + ":0.1.0"); err != nil {
		t.Fatal(err)
	}
	if err := c.FetchPackage(ctx, local, "gravitational.io/cluster-image:0.0.1"); err == nil {
		t.Fatal("the application's package was served to a node")
	}

	// Completing needs a finished plan; then the node is labelled.
	if err := c.Complete(ctx, a.Plan); err == nil {
		t.Fatal("completed with an unfinished plan")
	}
	finished := finish(a.Plan)
	if _, err := f.clients.Kube.Nodes().Create(ctx, &corev1.Node{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"}, ObjectMeta: metav1.ObjectMeta{Name: "10.0.0.2"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Complete(ctx, finished); err != nil {
		t.Fatal(err)
	}
	n, _ := f.clients.Kube.Nodes().Get(ctx, "10.0.0.2", metav1.GetOptions{})
	if n.Labels[cluster.LabelRole] != "node" || n.Labels[cluster.LabelHostname] != "node-2" {
		t.Fatalf("labels %v", n.Labels)
	}
	if info, _ := cluster.LoadInfo(ctx, f.clients); info.State != "expanding" {
		t.Fatalf("cluster state %q while a join is still open", info.State)
	}

	// Rolling back the other frees its subnet; the cluster is active.
	if err := c.Rollback(ctx, b.Plan); err != nil {
		t.Fatal(err)
	}
	cm, _ := f.clients.Kube.ConfigMaps(cluster.Namespace).Get(ctx, subnetsName, metav1.GetOptions{})
	if _, ok := cm.Data["10.0.0.3"]; ok || cm.Data["10.0.0.2"] != "10.244.1.0/24" {
		t.Fatalf("subnets after rollback: %v", cm.Data)
	}
	if info, _ := cluster.LoadInfo(ctx, f.clients); info.State != "active" {
		t.Fatalf("cluster state %q after every join ended", info.State)
	}
	// The freed subnet is handed out again.
	d, err := c.Join(ctx, worker("10.0.0.4", "node-4"))
	if err != nil || d.Node.Self.PodSubnet != "10.244.2.0/24" {
		t.Fatalf("join after a rollback: %v (%+v)", err, d)
	}

	// An expired token admits nobody.
	exp := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "gravity-join-token", Namespace: cluster.Namespace},
		Data: map[string][]byte{"token": []byte(testToken), "expires": []byte(f.now.Add(-time.Minute).UTC().Format(time.RFC3339))}}
	if _, err := f.clients.Kube.Secrets(cluster.Namespace).Update(ctx, exp, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Join(ctx, worker("10.0.0.5", "node-5")); err == nil || !strings.Contains(err.Error(), "the join token expired") {
		t.Fatalf("expired token: %v", err)
	}
}

// A node joins as a master while the cluster has fewer than three, and
// alone: etcd grows by one member at a time, so nothing joins beside it.
func TestMasterJoinsAlone(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c, err := Discover(ctx, f.addr, testToken)
	if err != nil {
		t.Fatal(err)
	}
	auto := worker("10.0.0.2", "node-2")
	auto.Master = nil
	m, err := c.Join(ctx, auto)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Node.Self.Master {
		t.Fatal("the second node of a one-master cluster joins as a worker")
	}
	var ids []string
	for _, ph := range m.Plan.Phases {
		ids = append(ids, ph.ID)
	}
	if got, want := strings.Join(ids, " "), "/admit /bootstrap/10.0.0.2 /pull/10.0.0.2 /etcd/10.0.0.2 /system/10.0.0.2 /wait/10.0.0.2 /registry/10.0.0.2"; got != want {
		t.Fatalf("master plan %s, want %s", got, want)
	}
	if _, err := c.Join(ctx, worker("10.0.0.3", "node-3")); !errors.Is(err, ErrBusy) {
		t.Fatalf("a worker joining beside a master: %v", err)
	}
	// A master gets the CA set with its certificates; a worker never.
	names, _ := pki.NodeCertNames(pki.Node{Name: "10.0.0.2", IP: net.ParseIP("10.0.0.2"), Master: true, ServiceIP: net.ParseIP("10.100.0.1")})
	keys, err := pki.NewNodeRequests(names)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.cas.Save(f.svc.cfg.Self.Paths().PKI, false); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Certs(ctx, m.OperationID, keys.CSRs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pki.WriteFiles(t.TempDir(), resp.CAFiles); err != nil {
		t.Fatalf("the CA set a master got: %v", err)
	}
	if _, err := keys.Complete(resp.Certs); err != nil {
		t.Fatal(err)
	}
}

func finish(p *plan.Plan) *plan.Plan {
	cp := *p
	cp.Phases = nil
	for _, ph := range p.Phases {
		c := *ph
		c.State = plan.Completed
		cp.Phases = append(cp.Phases, &c)
	}
	return &cp
}

func TestFreeSubnet(t *testing.T) {
	for _, tc := range []struct {
		cidr string
		used []string
		want string
		err  string
	}{
		{cidr: "10.244.0.0/16", want: "10.244.0.0/24"},
		{cidr: "10.244.0.0/16", used: []string{"10.244.0.0/24", "10.244.2.0/24"}, want: "10.244.1.0/24"},
		{cidr: "192.168.0.0/23", used: []string{"192.168.0.0/24"}, want: "192.168.1.0/24"},
		{cidr: "192.168.0.0/23", used: []string{"192.168.0.0/24", "192.168.1.0/24"}, err: "every /24 is taken"},
		{cidr: "10.244.0.0/25", err: "not an IPv4 CIDR of /24 or larger"},
		{cidr: "10.244.1.0/16", err: "not an IPv4 CIDR"},
		{cidr: "fd00::/64", err: "not an IPv4 CIDR"},
	} {
		used := map[string]bool{}
		for _, u := range tc.used {
			used[u] = true
		}
		got, err := FreeSubnet(tc.cidr, used)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %v: err %v, want %q", tc.cidr, tc.used, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s %v = %s, %v; want %s", tc.cidr, tc.used, got, err, tc.want)
		}
	}
}

// registeredWorker is node-2 (10.0.0.2) admitted as a worker, with the
// Node object its kubelet makes.
func (f *fixture) registeredWorker(t *testing.T) (*Client, *JoinResponse) {
	t.Helper()
	ctx := context.Background()
	c, err := Discover(ctx, f.addr, testToken)
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.Join(ctx, worker("10.0.0.2", "node-2"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.clients.Kube.Nodes().Create(ctx, &corev1.Node{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
		ObjectMeta: metav1.ObjectMeta{Name: "10.0.0.2", Labels: map[string]string{cluster.LabelHostname: "node-2"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return c, a
}

// A node removes itself with its own certificate, never another; the
// shrink is recorded, the node and its subnet are gone.
func TestRemoveWorker(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c, a := f.registeredWorker(t)
	if err := c.Complete(ctx, finish(a.Plan)); err != nil {
		t.Fatal(err)
	}
	certFor := func(cn string, orgs ...string) *tls.Config {
		kp, err := f.cas.Cluster.Issue(pki.Request{CommonName: cn, Organization: orgs, Validity: time.Hour, Usages: pki.UsageClient})
		if err != nil {
			t.Fatal(err)
		}
		return &tls.Config{RootCAs: f.cas.Cluster.Pool(), Certificates: []tls.Certificate{kp.TLSCertificate()}}
	}
	if _, err := Remove(ctx, f.addr, certFor("system:node:10.0.0.3", pki.SystemNodes), "10.0.0.2", false); err == nil ||
		!strings.Contains(err.Error(), "may not remove node 10.0.0.2") {
		t.Fatalf("another node's certificate: %v", err)
	}
	if _, err := Remove(ctx, f.addr, certFor("system:node:10.0.0.1", pki.SystemNodes), "10.0.0.1", false); err == nil ||
		!strings.Contains(err.Error(), "last master") {
		t.Fatalf("the last master: %v", err)
	}
	p, err := Remove(ctx, f.addr, certFor("system:node:10.0.0.2", pki.SystemNodes), "10.0.0.2", false)
	if err != nil {
		t.Fatal(err)
	}
	if p.OperationType != OperationShrink || !p.Done() || len(p.Leaves()) != 2 {
		t.Fatalf("shrink plan %+v", p)
	}
	if _, err := f.clients.Kube.Nodes().Get(ctx, "10.0.0.2", metav1.GetOptions{}); err == nil {
		t.Fatal("the removed node is still there")
	}
	cm, _ := f.clients.Kube.ConfigMaps(cluster.Namespace).Get(ctx, subnetsName, metav1.GetOptions{})
	if _, ok := cm.Data["10.0.0.2"]; ok {
		t.Fatal("the removed node kept its pod subnet")
	}
}

// A join whose host died half way is rolled back from a master by a
// forced removal; without --force the removal says how.
func TestRemoveJoiningNode(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	// The node got as far as registering itself.
	c, a := f.registeredWorker(t)
	kp, err := f.cas.Cluster.Issue(pki.Request{CommonName: "admin", Organization: []string{pki.SystemMasters}, Validity: time.Hour, Usages: pki.UsageClient})
	if err != nil {
		t.Fatal(err)
	}
	admin := &tls.Config{RootCAs: f.cas.Cluster.Pool(), Certificates: []tls.Certificate{kp.TLSCertificate()}}
	if _, err := Remove(ctx, f.addr, admin, "node-2", false); err == nil || !strings.Contains(err.Error(), "is still joining") {
		t.Fatalf("removal of a joining node without --force: %v", err)
	}
	if info, _ := cluster.LoadInfo(ctx, f.clients); info.State != "expanding" {
		t.Fatalf("a refused removal changed the cluster's state to %q", info.State)
	}
	p, err := Remove(ctx, f.addr, admin, "10.0.0.2", true)
	if err != nil {
		t.Fatal(err)
	}
	if p.OperationID != a.OperationID || p.State() != plan.RolledBack {
		t.Fatalf("removal of a joining node answered operation %s (%s), want %s rolled back", p.OperationID, p.State(), a.OperationID)
	}
	ops, _ := cluster.Operations(ctx, f.clients)
	if len(ops) != 1 || ops[0].State() != plan.RolledBack {
		t.Fatalf("operations after the removal: %d, first %v", len(ops), ops[0].State())
	}
	if _, err := f.clients.Kube.Nodes().Get(ctx, "10.0.0.2", metav1.GetOptions{}); err == nil {
		t.Fatal("the abandoned node is still there")
	}
	cm, _ := f.clients.Kube.ConfigMaps(cluster.Namespace).Get(ctx, subnetsName, metav1.GetOptions{})
	if _, ok := cm.Data["10.0.0.2"]; ok {
		t.Fatal("the abandoned node kept its pod subnet")
	}
	if info, _ := cluster.LoadInfo(ctx, f.clients); info.State != "active" {
		t.Fatalf("cluster state %q after the join was rolled back", info.State)
	}
	// Its host comes back: the operation has ended.
	if _, err := c.Certs(ctx, a.OperationID, nil); err == nil || !strings.Contains(err.Error(), "is rolled_back") {
		t.Fatalf("the abandoned join went on: %v", err)
	}
}

// A cluster with a node that is not Ready does not grow.
func TestJoinRefusedWhileDegraded(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	bad := &corev1.Node{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"}, ObjectMeta: metav1.ObjectMeta{Name: "10.0.0.9"},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown,
			Message: "Kubelet stopped posting node status."}}}}
	if _, err := f.clients.Kube.Nodes().Create(ctx, bad, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c, err := Discover(ctx, f.addr, testToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Join(ctx, worker("10.0.0.2", "node-2")); err == nil || !strings.Contains(err.Error(), "the cluster is degraded: node 10.0.0.9 is not Ready (Kubelet stopped posting node status.)") {
		t.Fatalf("join into a degraded cluster: %v", err)
	}
}

func TestResolveRole(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	profiles := "- name: db\n  serviceRole: master\n- name: worker\n  serviceRole: node\n- name: any\n"
	if err := cluster.SaveProfiles(ctx, f.clients, []byte(profiles)); err != nil {
		t.Fatal(err)
	}
	nodes := []corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "10.0.0.1", Labels: map[string]string{labelControlPlane: "", cluster.LabelRole: "db"}}}}
	yes, no := true, false
	for _, tc := range []struct {
		name   string
		req    JoinRequest
		role   string
		master bool
		err    string
	}{
		{name: "auto: a master, the first master's profile", role: "db", master: true},
		{name: "a worker: the node profile", req: JoinRequest{Master: &no}, role: "worker"},
		{name: "a node profile is a worker", req: JoinRequest{Role: "worker"}, role: "worker"},
		{name: "no serviceRole: auto", req: JoinRequest{Role: "any"}, role: "any", master: true},
		{name: "no serviceRole, asked", req: JoinRequest{Role: "any", Master: &no}, role: "any"},
		{name: "unknown", req: JoinRequest{Role: "nope"}, err: "--role=nope: the application has no such node profile (it has db, worker, any)"},
		{name: "contradiction", req: JoinRequest{Role: "db", Master: &no}, err: "--role=db is a master profile"},
		{name: "contradiction 2", req: JoinRequest{Role: "worker", Master: &yes}, err: "--role=worker is a node profile"},
	} {
		got, err := f.svc.resolveRole(ctx, tc.req, nodes)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || got.Role != tc.role || got.Master != tc.master {
			t.Errorf("%s: %+v, %v; want role %s master %v", tc.name, got, err, tc.role, tc.master)
		}
	}
	// Without profiles, every node is "node".
	if err := cluster.SaveProfiles(ctx, f.clients, []byte("[]\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.resolveRole(ctx, JoinRequest{Role: "db"}, nodes); err == nil || !strings.Contains(err.Error(), `its nodes are "node"`) {
		t.Errorf("a role in a manifest without profiles: %v", err)
	}
	if got, err := f.svc.resolveRole(ctx, JoinRequest{Master: &no}, nodes); err != nil || got.Role != "node" {
		t.Errorf("default worker without profiles: %+v, %v", got, err)
	}
}

// A worker renews its certificates with its current one, for itself only;
// a master does not renew through the service.
func TestRenewNode(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if _, err := f.clients.Kube.Nodes().Create(ctx, &corev1.Node{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
		ObjectMeta: metav1.ObjectMeta{Name: "10.0.0.2", Labels: map[string]string{cluster.LabelHostname: "node-2"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	certFor := func(cn string) *tls.Config {
		kp, err := f.cas.Cluster.Issue(pki.Request{CommonName: cn, Organization: []string{pki.SystemNodes}, Validity: time.Hour, Usages: pki.UsageClient})
		if err != nil {
			t.Fatal(err)
		}
		return &tls.Config{RootCAs: f.cas.Cluster.Pool(), Certificates: []tls.Certificate{kp.TLSCertificate()}}
	}
	names, _ := pki.NodeCertNames(pki.Node{Name: "10.0.0.2", IP: net.ParseIP("10.0.0.2")})
	keys, err := pki.NewNodeRequests(names)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RenewNode(ctx, f.addr, certFor("system:node:10.0.0.3"), "10.0.0.2", keys.CSRs); err == nil || !strings.Contains(err.Error(), "may not renew") {
		t.Fatalf("another node's certificate: %v", err)
	}
	if _, err := RenewNode(ctx, f.addr, &tls.Config{RootCAs: f.cas.Cluster.Pool()}, "10.0.0.2", keys.CSRs); err == nil {
		t.Fatal("renewed without a client certificate")
	}
	if _, err := RenewNode(ctx, f.addr, certFor("system:node:10.0.0.1"), "10.0.0.1", keys.CSRs); err == nil || !strings.Contains(err.Error(), "a master renews") {
		t.Fatalf("a master: %v", err)
	}
	resp, err := RenewNode(ctx, f.addr, certFor("system:node:10.0.0.2"), "10.0.0.2", keys.CSRs)
	if err != nil {
		t.Fatal(err)
	}
	pairs, err := keys.Complete(resp.Certs)
	if err != nil {
		t.Fatal(err)
	}
	if got := pairs[pki.KubeletServer].Cert.DNSNames; len(got) != 1 || got[0] != "node-2" {
		t.Fatalf("kubelet serving names %v", got)
	}
}

// One master at a time holds the operations lease; a holder that died
// loses it when it expires.
func TestOperationsLease(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	other, err := New(f.svc.cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, b := f.svc.lease("a"), other.lease("b")
	if ok, err := a.Acquire(ctx); err != nil || !ok {
		t.Fatalf("first acquire: %v, %v", ok, err)
	}
	if ok, err := b.Acquire(ctx); err != nil || ok {
		t.Fatalf("acquired a held lease: %v, %v", ok, err)
	}
	a.Release(ctx)
	if ok, err := b.Acquire(ctx); err != nil || !ok {
		t.Fatalf("acquire after release: %v, %v", ok, err)
	}
	f.now = f.now.Add(cluster.LeaseDuration + time.Second) // b died holding it
	if ok, err := a.Acquire(ctx); err != nil || !ok {
		t.Fatalf("acquire after expiry: %v, %v", ok, err)
	}
}

// TestNodeHooksPlanned: a join of a cluster whose running version has
// node hooks plans them where Gravity ran them, and the service runs only
// the hooks its plan has.
func TestNodeHooksPlanned(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	job := &batchv1.Job{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "hook", Image: "registry.local:5000/alpine:3.3"}}}}}}
	if err := cluster.SaveNodeHooks(ctx, f.clients, cluster.NodeHooks{Jobs: map[string]*batchv1.Job{
		cluster.HookPreNodeAdd: job, cluster.HookPostNodeAdd: job}}); err != nil {
		t.Fatal(err)
	}
	c, err := Discover(ctx, f.addr, testToken)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Join(ctx, worker("10.0.0.2", "node-2"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ph := range resp.Plan.Leaves() {
		got = append(got, ph.ID)
	}
	want := []string{"/admit", "/bootstrap/10.0.0.2", "/pull/10.0.0.2", "/preHook", "/system/10.0.0.2", "/wait/10.0.0.2", "/postHook"}
	if !slices.Equal(got, want) {
		t.Fatalf("phases %v, want %v", got, want)
	}
	if ph, _ := resp.Plan.Find("/preHook"); ph.Type != PhaseHook || ph.Data[DataHook] != cluster.HookPreNodeAdd || ph.Requires[0] != "/pull/10.0.0.2" {
		t.Errorf("preHook phase %+v", ph)
	}
	if err := c.RunHook(ctx, resp.OperationID, cluster.HookPreNodeRemove, io.Discard); err == nil || !strings.Contains(err.Error(), "has no preNodeRemove hook to run") {
		t.Errorf("a hook the plan lacks: %v", err)
	}

	// Without node hooks, none is planned.
	master := ExpandPlan("op", "c", Member{IP: "10.0.0.5", Master: true}, "0.1.0", nil, time.Now())
	for _, ph := range master.Leaves() {
		if ph.Type == PhaseHook {
			t.Errorf("hook phase %s planned without hooks", ph.ID)
		}
	}
	// A master's postNodeAdd runs once its registry is filled.
	master = ExpandPlan("op", "c", Member{IP: "10.0.0.5", Master: true}, "0.1.0", []string{cluster.HookPostNodeAdd}, time.Now())
	if l := master.Leaves(); l[len(l)-1].ID != "/postHook" || l[len(l)-1].Requires[0] != "/registry/10.0.0.5" {
		t.Errorf("master's last phase %+v", l[len(l)-1])
	}
}
