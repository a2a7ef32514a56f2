package clusterapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/identity"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/plan"
)

// watcherDoc is a role that sees the cluster and its operations, and
// nothing else: no join token, no certificate, no users.
const watcherDoc = `kind: role
version: v3
metadata: {name: watcher}
spec:
  allow:
    rules: [{resources: [cluster, operation], verbs: [list, read]}]
---
kind: user
version: v2
metadata: {name: walter}
spec: {type: agent, roles: [watcher]}
---
kind: token
version: v2
metadata: {name: walter-token}
spec: {user: walter}
`

// withCluster records what an installed cluster has: its record, join
// token, node profiles, an operation, and the master's address.
func (f *fixture) withCluster(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	start := f.now.Add(-10 * time.Minute).UTC().Truncate(time.Second)
	op := &plan.Plan{Version: plan.SchemaVersion, OperationID: "op-1", OperationType: "install", ClusterName: "c",
		Description: "Install cluster c", Created: start, Phases: []*plan.Phase{
			{ID: "/init", Description: "Initialize", State: plan.Completed, Started: start, Finished: start.Add(time.Minute)},
			{ID: "/app", Description: "Install the application", State: plan.InProgress, Started: start.Add(time.Minute)}}}
	node, err := f.clients.Kube.Nodes().Get(ctx, "10.0.0.1", metav1.GetOptions{})
	if err == nil {
		node.Labels[cluster.LabelRole] = "node"
		node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}}
		node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		_, err = f.clients.Kube.Nodes().Update(ctx, node, metav1.UpdateOptions{})
	}
	for _, e := range []error{err,
		cluster.SaveInfo(ctx, f.clients, cluster.Info{Name: "c", State: "active", App: "cluster-image", AppVersion: "0.0.1"}),
		cluster.SaveToken(ctx, f.clients, cluster.JoinToken{Token: "join-secret-1"}),
		cluster.SaveProfiles(ctx, f.clients, []byte("- name: node\n  description: Gravity worker\n- name: db\n  serviceRole: node\n")),
		cluster.SaveOperation(ctx, f.clients, op),
	} {
		if e != nil {
			t.Fatal(e)
		}
	}
	// The API server keeps a Secret's StringData as Data; the fake does not.
	secrets, err := f.clients.Kube.Secrets(cluster.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range secrets.Items {
		if sec.StringData["token"] == "join-secret-1" {
			sec.Data = map[string][]byte{"token": []byte("join-secret-1")}
			if _, err := f.clients.Kube.Secrets(cluster.Namespace).Update(ctx, &sec, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, doc := range []string{viewerDoc, watcherDoc} {
		if _, err := f.create(t, doc, false); err != nil {
			t.Fatal(err)
		}
	}
}

// get calls path as c and decodes the answer into out; the status is
// returned.
func get(t *testing.T, f *fixture, c *Client, path string, out any) int {
	t.Helper()
	if err := c.Do(context.Background(), http.MethodGet, path, nil, out); err != nil {
		return statusOf(t, f, c, http.MethodGet, path, nil)
	}
	return http.StatusOK
}

func TestPanelEndpoints(t *testing.T) {
	f := newFixture(t)
	f.withCluster(t)
	callers := map[string]*Client{
		"master":  f.admin(t),
		"node":    f.client(t, pki.SystemNodes, "system:node:10.0.0.2"),
		"viewer":  f.bearer(t, "alice-token"),
		"watcher": f.bearer(t, "walter-token"),
		"anon":    f.client(t, "", ""),
	}
	paths := []string{PathLoginInfo, PathCluster, PathOperations, PathOperations + "/op-1", PathOperations + "/nosuch", PathCertificate}
	// Anything not listed: 403 for who is authenticated, 401 for the rest.
	want := map[string]map[string]int{
		PathLoginInfo:              {"master": 200, "node": 200, "viewer": 200, "watcher": 200, "anon": 200},
		PathCluster:                {"master": 200, "watcher": 200},
		PathOperations:             {"master": 200, "watcher": 200},
		PathOperations + "/op-1":   {"master": 200, "watcher": 200},
		PathOperations + "/nosuch": {"master": 404, "watcher": 404},
		PathCertificate:            {"master": 200},
	}
	for _, path := range paths {
		for name, c := range callers {
			expect, ok := want[path][name]
			if !ok {
				expect = http.StatusForbidden
				if name == "anon" {
					expect = http.StatusUnauthorized
				}
			}
			if got := get(t, f, c, path, nil); got != expect {
				t.Errorf("GET %s by %s: %d, want %d", path, name, got, expect)
			}
		}
	}

	var login LoginInfo
	if get(t, f, callers["anon"], PathLoginInfo, &login); login != (LoginInfo{Cluster: "c", SecondFactor: "off"}) {
		t.Errorf("login info = %+v", login)
	}

	// The dashboard's: the cluster, its node and the newest operation;
	// join commands only for who may change the cluster.
	for name, withJoin := range map[string]bool{"master": true, "watcher": false} {
		var cr ClusterResponse
		get(t, f, callers[name], PathCluster, &cr)
		if cr.Name != "c" || cr.App != "cluster-image" || cr.AppVersion != "0.0.1" || !cr.Healthy || len(cr.Nodes) != 1 ||
			cr.Nodes[0].Address != "10.0.0.1" || !cr.Nodes[0].Master || cr.Operation == nil || cr.Operation.ID != "op-1" {
			t.Errorf("cluster as %s = %s", name, jsonOf(t, cr))
		}
		if len(cr.Profiles) != 2 || cr.Profiles[0].Name != "node" || cr.Profiles[1].Name != "db" {
			t.Fatalf("profiles as %s = %+v", name, cr.Profiles)
		}
		cmd := ""
		if withJoin {
			cmd = "sudo ./gravity join 10.0.0.1 --token=join-secret-1 --role=db"
		}
		if got := cr.Profiles[1].JoinCommand; got != cmd {
			t.Errorf("join command as %s = %q, want %q", name, got, cmd)
		}
		if raw := jsonOf(t, cr); !withJoin && strings.Contains(raw, "join-secret-1") {
			t.Errorf("the join token is shown to %s: %s", name, raw)
		}
	}

	var op OperationResponse
	get(t, f, callers["watcher"], PathOperations+"/op-1", &op)
	if op.ID != "op-1" || op.Phases != 2 || op.Done != 1 || op.State != string(plan.InProgress) || op.Plan == nil ||
		len(op.Plan.Phases) != 2 || op.Plan.Phases[0].Finished.IsZero() || op.HookLogs == nil {
		t.Errorf("operation = %s", jsonOf(t, op))
	}
	var ops []cluster.OperationBrief
	if get(t, f, callers["watcher"], PathOperations, &ops); len(ops) != 1 || ops[0].ID != "op-1" {
		t.Errorf("operations = %+v", ops)
	}

	// The certificate: this request's, of the cluster CA.
	var cert CertificateResponse
	get(t, f, callers["master"], PathCertificate, &cert)
	if cert.Served.Source != "cluster CA" || !strings.HasPrefix(cert.Served.Fingerprint, "SHA256:") || cert.Served.Subject != "CN=gravity-site" ||
		len(cert.Served.IPAddresses) != 1 || cert.Served.IPAddresses[0] != "127.0.0.1" || cert.KeyPair != nil {
		t.Errorf("certificate = %s", jsonOf(t, cert))
	}
}

func TestWhoamiPermissions(t *testing.T) {
	f := newFixture(t)
	f.withCluster(t)
	for _, tc := range []struct {
		caller    *Client
		allowed   []string
		forbidden []string
	}{
		{f.admin(t), []string{"read cluster", "update cluster", "create user", "list event", "update tlskeypair"}, nil},
		{f.bearer(t, "alice-token"), []string{"list user"}, []string{"read cluster", "create user", "list event", "read tlskeypair"}},
		{f.bearer(t, "walter-token"), []string{"read cluster", "list operation", "read operation"}, []string{"update cluster", "list user"}},
	} {
		var me WhoamiResponse
		if err := tc.caller.Do(context.Background(), http.MethodGet, PathWhoami, nil, &me); err != nil {
			t.Fatal(err)
		}
		for _, p := range tc.allowed {
			if !me.Permissions[p] {
				t.Errorf("%s: %q not allowed: %v", me.User, p, me.Permissions)
			}
		}
		for _, p := range tc.forbidden {
			if allowed, ok := me.Permissions[p]; !ok || allowed {
				t.Errorf("%s: %q allowed or missing: %v", me.User, p, me.Permissions)
			}
		}
	}
}

// browser is a client that keeps cookies, as a browser logged in to the
// panel does.
type browser struct {
	t    *testing.T
	f    *fixture
	http *http.Client
	base *url.URL
}

func (f *fixture) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	c := f.client(t, "", "").http
	c.Jar = jar
	base, _ := url.Parse("https://" + f.addr)
	return &browser{t: t, f: f, http: c, base: base}
}

func (b *browser) cookie(name string) string {
	for _, c := range b.http.Jar.Cookies(b.base) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// do sends a JSON request with the given headers and returns the status.
func (b *browser) do(method, path string, body any, header map[string]string) int {
	b.t.Helper()
	req, err := http.NewRequest(method, b.base.String()+path, strings.NewReader(jsonOf(b.t, body)))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := b.http.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestCSRF(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var inv InviteResponse
	if err := f.admin(t).Do(ctx, http.MethodPost, PathUsers, InviteRequest{Name: "admin", Roles: []string{identity.Admin}}, &inv); err != nil {
		t.Fatal(err)
	}
	secret := inv.URL[strings.LastIndex(inv.URL, "/")+1:]
	var sess SessionResponse
	if err := f.client(t, "", "").Do(ctx, http.MethodPost, PathInvites+secret, PasswordRequest{Password: "correct horse battery"}, &sess); err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	// Another site's page cannot log the browser in.
	for _, forged := range []map[string]string{{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
		{"Origin": "https://10.0.0.1:3009"}} {
		if code := b.do(http.MethodPost, PathSessions, LoginRequest{User: "admin", Password: "correct horse battery"}, forged); code != http.StatusForbidden {
			t.Errorf("a login with %v: %d", forged, code)
		}
	}
	same := map[string]string{"Origin": "https://" + b.base.Host, "Sec-Fetch-Site": "same-origin"}
	if code := b.do(http.MethodPost, PathSessions, LoginRequest{User: "admin", Password: "correct horse battery"}, same); code != 200 {
		t.Errorf("a login from the panel's own page: %d", code)
	}
	if code := b.do(http.MethodPost, PathSessions, LoginRequest{User: "admin", Password: "correct horse battery"}, nil); code != 200 {
		t.Fatalf("login: %d", code)
	}
	token := b.cookie(CSRFCookie)
	if token == "" || b.cookie(SessionCookie) == "" {
		t.Fatalf("cookies after login: %v", b.http.Jar.Cookies(b.base))
	}
	invite := func(name string) InviteRequest { return InviteRequest{Name: name, Roles: []string{identity.Admin}} }
	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   any
		header map[string]string
		want   int
	}{
		{"a read needs no token", http.MethodGet, PathUsers, nil, nil, 200},
		{"no header", http.MethodPost, PathUsers, invite("u1"), nil, 403},
		{"a wrong header", http.MethodPost, PathUsers, invite("u2"), map[string]string{CSRFHeader: strings.Repeat("0", 64)}, 403},
		{"another session's token", http.MethodPost, PathUsers, invite("u3"), map[string]string{CSRFHeader: csrfToken(identity.SecretHash(sess.Token))}, 403},
		{"the token", http.MethodPost, PathUsers, invite("u4"), map[string]string{CSRFHeader: token}, 200},
		{"delete without", http.MethodDelete, PathUsers + "/nobody", nil, nil, 403},
		{"delete with", http.MethodDelete, PathUsers + "/nobody", nil, map[string]string{CSRFHeader: token}, 404},
		{"a bearer session needs none", http.MethodPost, PathUsers, invite("u5"), map[string]string{"Authorization": "Bearer " + sess.Token}, 200},
		{"logout without", http.MethodDelete, PathSessions, nil, nil, 403},
		{"logout with", http.MethodDelete, PathSessions, nil, map[string]string{CSRFHeader: token}, 204},
	} {
		if got := b.do(tc.method, tc.path, tc.body, tc.header); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	// A certificate's caller (no cookie) is not asked for one either.
	if err := f.admin(t).Do(ctx, http.MethodPost, PathUsers, invite("u6"), nil); err != nil {
		t.Errorf("invite with the master certificate: %v", err)
	}
	// Logging out ended the session and dropped both cookies.
	if b.cookie(SessionCookie) != "" || b.cookie(CSRFCookie) != "" {
		t.Errorf("cookies after logout: %v", b.http.Jar.Cookies(b.base))
	}
	var events []cluster.AuditEvent
	if err := f.admin(t).Do(ctx, http.MethodGet, PathAudit, nil, &events); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(events)
	for _, u := range []string{"u1", "u2", "u3"} {
		if strings.Contains(string(raw), "invited "+u+" ") {
			t.Errorf("a refused request invited %s", u)
		}
	}
	if !strings.Contains(string(raw), "invited u4 ") {
		t.Errorf("no invitation of u4 in the audit log")
	}
}
