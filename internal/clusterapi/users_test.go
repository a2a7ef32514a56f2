package clusterapi

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/identity"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/resources"
)

// client is an API client of f's service: as cert's identity (an
// organization and a name), or anonymous when org is "".
func (f *fixture) client(t *testing.T, org, cn string) *Client {
	t.Helper()
	cfg := &tls.Config{RootCAs: f.cas.Cluster.Pool(), MinVersion: tls.VersionTLS12}
	if org != "" {
		kp, err := f.cas.Cluster.Issue(pki.Request{CommonName: cn, Organization: []string{org}, Validity: time.Hour, Usages: pki.UsageClient})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{kp.TLSCertificate()}
	}
	return NewClient(f.addr, cfg)
}

func (f *fixture) admin(t *testing.T) *Client { return f.client(t, pki.SystemMasters, "admin") }

func (f *fixture) bearer(t *testing.T, token string) *Client {
	c := f.client(t, "", "")
	c.Bearer = token
	return c
}

// create posts a resource file's documents as admin.
func (f *fixture) create(t *testing.T, doc string, force bool) (*ResourcesResponse, error) {
	t.Helper()
	rs, err := resources.Decode("f.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var out ResourcesResponse
	err = f.admin(t).Do(context.Background(), http.MethodPost, PathResources, ResourcesRequest{Resources: rs, Force: force}, &out)
	return &out, err
}

const viewerDoc = `kind: role
version: v3
metadata: {name: viewer}
spec:
  allow:
    rules: [{resources: [user], verbs: [list, read]}]
---
kind: user
version: v2
metadata: {name: alice}
spec: {type: agent, roles: [viewer]}
---
kind: token
version: v2
metadata: {name: alice-token}
spec: {user: alice}
`

func TestSeedAgentResources(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	seed, err := os.ReadFile("../../examples/gravity101/agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.create(t, string(seed), false)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(out.Messages, "\n"); got != "Created user \"agent@example.com\"\nCreated token for user \"agent@example.com\"" {
		t.Errorf("messages = %q", got)
	}
	var users []resources.Resource
	if err := f.admin(t).Do(ctx, http.MethodGet, PathResources+"/users", nil, &users); err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || users[0].Metadata.Name != "agent@example.com" || users[0].Spec.(*resources.UserSpec).Type != "agent" {
		t.Errorf("users = %+v", users)
	}
	err = f.admin(t).Do(ctx, http.MethodGet, PathResources+"/tokens", nil, &users)
	if err == nil || err.Error() != "please specify user via --user flag" {
		t.Errorf("tokens without --user: %v", err)
	}
	var tokens []resources.Resource
	if err := f.admin(t).Do(ctx, http.MethodGet, PathResources+"/tokens?user="+url.QueryEscape("agent@example.com"), nil, &tokens); err != nil {
		t.Fatal(err)
	}
	if len(tokens) != 1 || tokens[0].Metadata.Name != "qwe123" {
		t.Errorf("tokens = %+v", tokens)
	}
	// The token works as a bearer token, as its user.
	var me WhoamiResponse
	if err := f.bearer(t, "qwe123").Do(ctx, http.MethodGet, PathWhoami, nil, &me); err != nil || me.User != "agent@example.com" {
		t.Errorf("whoami = %+v, %v", me, err)
	}
	// A duplicate is refused and changes nothing; --force replaces.
	if _, err := f.create(t, string(seed), false); err == nil || !strings.Contains(err.Error(), `user "agent@example.com" already exists: --force replaces it`) {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := f.create(t, string(seed), true); err != nil {
		t.Errorf("--force: %v", err)
	}
	// A batch with one bad resource writes none of them.
	bad := "kind: role\nversion: v3\nmetadata: {name: ops}\nspec: {allow: {logins: [root]}}\n---\nkind: token\nversion: v2\nmetadata: {name: zzz999}\nspec: {user: nobody}\n"
	if _, err := f.create(t, bad, false); err == nil || !strings.Contains(err.Error(), `token for user "nobody": the user does not exist`) {
		t.Errorf("token of a missing user: %v", err)
	}
	if _, err := cluster.GetResource(ctx, f.clients, resources.KindRole, "ops"); !errors.Is(err, cluster.ErrNotFound) {
		t.Errorf("the batch's role was written: %v", err)
	}
	noRole := "kind: user\nversion: v2\nmetadata: {name: bob}\nspec: {roles: [nosuch]}\n"
	if _, err := f.create(t, noRole, false); err == nil || !strings.Contains(err.Error(), `role "nosuch" does not exist`) {
		t.Errorf("user with a missing role: %v", err)
	}
	var roles []resources.Resource
	if err := f.admin(t).Do(ctx, http.MethodGet, PathResources+"/role?name=%40teleadmin", nil, &roles); err != nil || len(roles) != 1 ||
		roles[0].Spec.(*resources.RoleSpec).Allow.KubernetesGroups[0] != "admin" {
		t.Errorf("get role @teleadmin: %+v %v", roles, err)
	}
	// Deleting the user takes its tokens with it.
	if err := f.admin(t).Do(ctx, http.MethodDelete, PathResources+"/user/agent@example.com", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.bearer(t, "qwe123").Do(ctx, http.MethodGet, PathWhoami, nil, nil); err == nil {
		t.Error("the deleted user's token still works")
	}
}

// TestAuthorizationMatrix checks each permission of the API, allowed and
// denied, for each kind of caller.
func TestAuthorizationMatrix(t *testing.T) {
	f := newFixture(t)
	if _, err := f.create(t, viewerDoc, false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.create(t, "kind: user\nversion: v2\nmetadata: {name: root-agent}\nspec: {type: agent, roles: [\"@teleadmin\"]}\n---\nkind: token\nversion: v2\nmetadata: {name: admin-token}\nspec: {user: root-agent}\n", false); err != nil {
		t.Fatal(err)
	}
	callers := map[string]*Client{
		"master": f.admin(t),
		"node":   f.client(t, pki.SystemNodes, "system:node:10.0.0.2"),
		"admin":  f.bearer(t, "admin-token"),
		"viewer": f.bearer(t, "alice-token"),
		"anon":   f.client(t, "", ""),
		"forged": f.bearer(t, "not-a-token"),
	}
	type req struct {
		method, path string
		body         any
		permission   string // in a 403's message
	}
	reqs := map[string]req{
		"list users":   {http.MethodGet, PathUsers, nil, `"list" on "user"`},
		"read user":    {http.MethodGet, PathResources + "/user?name=alice", nil, `"read" on "user"`},
		"invite":       {http.MethodPost, PathUsers, InviteRequest{Name: "carol", Roles: []string{"viewer"}}, `"create" on "user"`},
		"list tokens":  {http.MethodGet, PathResources + "/tokens?user=alice", nil, `"list" on "token"`},
		"list roles":   {http.MethodGet, PathResources + "/roles", nil, `"list" on "role"`},
		"audit":        {http.MethodGet, PathAudit, nil, `"list" on "event"`},
		"gateway":      {http.MethodGet, PathResources + "/authgateway", nil, `"list" on "authgateway"`},
		"delete token": {http.MethodDelete, PathResources + "/token/nothing-here", nil, `"delete" on "token"`},
		"reset user":   {http.MethodPost, PathUsers + "/nobody/reset", InviteRequest{}, `"update" on "user"`},
		"delete user":  {http.MethodDelete, PathUsers + "/nobody", nil, `"delete" on "user"`},
		"create token": {http.MethodPost, PathResources, ResourcesRequest{Force: true, Resources: []resources.Resource{{Kind: "token", Version: "v2",
			Metadata: resources.Metadata{Name: "alice-2nd-token"}, Spec: &resources.TokenSpec{User: "alice"}}}}, `"create" on "token"`},
		"set 2FA": {http.MethodPost, PathResources, ResourcesRequest{Resources: []resources.Resource{{Kind: "authpreference", Version: "v2",
			Spec: &resources.AuthPreferenceSpec{SecondFactor: "off"}}}}, `"create" on "authpreference"`},
		"read cert":  {http.MethodGet, PathResources + "/tlskeypair?name=keypair", nil, `"read" on "tlskeypair"`},
		"connectors": {http.MethodGet, PathResources + "/github", nil, `"list" on "auth_connector"`},
		"whoami":     {http.MethodGet, PathWhoami, nil, ""},
	}
	// want: status by caller; anything not listed is 403 for the
	// authenticated and 401 for the rest.
	want := map[string]map[string]int{
		"list users":   {"master": 200, "admin": 200, "viewer": 200},
		"read user":    {"master": 200, "admin": 200, "viewer": 200},
		"invite":       {"master": 200, "admin": 200},
		"list tokens":  {"master": 200, "admin": 200},
		"list roles":   {"master": 200, "admin": 200},
		"audit":        {"master": 200, "admin": 200},
		"gateway":      {"master": 200, "admin": 200},
		"delete token": {"master": 404, "admin": 404},
		"reset user":   {"master": 404, "admin": 404},
		"delete user":  {"master": 404, "admin": 404},
		"create token": {"master": 200, "admin": 200},
		"set 2FA":      {"master": 200, "admin": 200},
		"read cert":    {"master": 404, "admin": 404},
		"connectors":   {"master": 200, "admin": 200},
		"whoami":       {"master": 200, "admin": 200, "viewer": 200, "node": 200},
	}
	for rname, rq := range reqs {
		for cname, c := range callers {
			expect, ok := want[rname][cname]
			if !ok {
				expect = http.StatusForbidden
				if cname == "anon" || cname == "forged" {
					expect = http.StatusUnauthorized
				}
			}
			err := c.Do(context.Background(), rq.method, rq.path, rq.body, nil)
			got := 200
			if err != nil {
				got = statusOf(t, f, c, rq.method, rq.path, rq.body)
			}
			if got != expect {
				t.Errorf("%s by %s: status %d, want %d (%v)", rname, cname, got, expect, err)
			}
			if got == http.StatusForbidden && rq.permission != "" && !strings.Contains(err.Error(), rq.permission) {
				t.Errorf("%s by %s: the refusal %q does not name %s", rname, cname, err, rq.permission)
			}
		}
	}
}

// statusOf repeats a request to read its status code.
func statusOf(t *testing.T, f *fixture, c *Client, method, path string, body any) int {
	t.Helper()
	req, err := http.NewRequest(method, "https://"+f.addr+path, strings.NewReader(jsonOf(t, body)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.Bearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestInviteSignupLogin(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin := f.admin(t)
	var inv InviteResponse
	for _, bad := range []struct {
		req  InviteRequest
		want string
	}{
		{InviteRequest{Name: "a b", Roles: []string{identity.Admin}}, "not a valid user name"},
		{InviteRequest{Name: "admin", Roles: []string{identity.Admin}, TTL: 49 * time.Hour}, "between 1m and 48h0m0s"},
		{InviteRequest{Name: "admin", Roles: []string{"nosuch"}}, `role "nosuch" does not exist`},
		{InviteRequest{Name: "admin"}, "at least one role"},
	} {
		if err := admin.Do(ctx, http.MethodPost, PathUsers, bad.req, &inv); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("invite %+v: %v, want %q", bad.req, err, bad.want)
		}
	}
	if err := admin.Do(ctx, http.MethodPost, PathUsers, InviteRequest{Name: "admin", Roles: []string{identity.Admin}}, &inv); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(inv.URL, "https://10.0.0.1:3009/web/newuser/") || len(inv.URL) != len("https://10.0.0.1:3009/web/newuser/")+64 || inv.TTL != 8*time.Hour {
		t.Fatalf("invite = %+v", inv)
	}
	path := strings.TrimPrefix(inv.URL, "https://10.0.0.1:3009")
	anon := f.client(t, "", "")
	// A completed signup lands on the panel's dashboard.
	anon.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	page := func(method string, form url.Values) (int, string) {
		req, _ := http.NewRequest(method, "https://"+f.addr+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := anon.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = ioCopy(&b, resp)
		if method == http.MethodPost && resp.StatusCode == http.StatusSeeOther {
			var session, csrf bool
			for _, c := range resp.Cookies() {
				session = session || (c.Name == SessionCookie && c.Secure && c.HttpOnly && c.SameSite == http.SameSiteStrictMode)
				csrf = csrf || (c.Name == CSRFCookie && c.Secure && !c.HttpOnly && c.SameSite == http.SameSiteStrictMode && c.Value != "")
			}
			if !session || !csrf {
				t.Errorf("after signup: session cookie %v, CSRF cookie %v; want both, secure", session, csrf)
			}
			if loc := resp.Header.Get("Location"); loc != "/web/" {
				t.Errorf("signup redirects to %q, want the dashboard", loc)
			}
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("CSP = %q", csp)
		}
		return resp.StatusCode, b.String()
	}
	if code, body := page(http.MethodGet, nil); code != 200 || !strings.Contains(body, `value="admin"`) || !strings.Contains(body, "Cluster c") {
		t.Errorf("signup page: %d %s", code, body)
	}
	if code, body := page(http.MethodPost, url.Values{"password": {"short"}, "confirm": {"short"}}); code != 400 || !strings.Contains(body, "needs at least 12") {
		t.Errorf("short password: %d %s", code, body)
	}
	if code, body := page(http.MethodPost, url.Values{"password": {"correct horse battery"}, "confirm": {"correct horse batter"}}); code != 400 || !strings.Contains(body, "differ") {
		t.Errorf("different passwords: %d %s", code, body)
	}
	if code, body := page(http.MethodPost, url.Values{"password": {"correct horse battery"}, "confirm": {"correct horse battery"}}); code != http.StatusSeeOther {
		t.Errorf("signup: %d %s", code, body)
	}
	if code, _ := page(http.MethodPost, url.Values{"password": {"another password here"}, "confirm": {"another password here"}}); code != 404 {
		t.Errorf("a used invitation answered %d", code)
	}
	// Login, lockout after five failures, logout.
	var sess SessionResponse
	if err := anon.Do(ctx, http.MethodPost, PathSessions, LoginRequest{User: "admin", Password: "correct horse battery"}, &sess); err != nil {
		t.Fatal(err)
	}
	if sess.Expires.Sub(f.now) != 30*time.Hour {
		t.Errorf("session lasts %s, want @teleadmin's 30h", sess.Expires.Sub(f.now))
	}
	var me WhoamiResponse
	if err := f.bearer(t, sess.Token).Do(ctx, http.MethodGet, PathWhoami, nil, &me); err != nil || me.User != "admin" || me.Type != "admin" {
		t.Errorf("whoami = %+v, %v", me, err)
	}
	for range identity.MaxFailures {
		if err := anon.Do(ctx, http.MethodPost, PathSessions, LoginRequest{User: "admin", Password: "wrong password!!"}, nil); err == nil || err.Error() != errBadLogin.Error() {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if err := anon.Do(ctx, http.MethodPost, PathSessions, LoginRequest{User: "admin", Password: "correct horse battery"}, nil); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("after %d failures: %v", identity.MaxFailures, err)
	}
	f.now = f.now.Add(identity.LockDuration)
	if err := anon.Do(ctx, http.MethodPost, PathSessions, LoginRequest{User: "admin", Password: "correct horse battery"}, nil); err != nil {
		t.Errorf("after the lock: %v", err)
	}
	if err := f.bearer(t, sess.Token).Do(ctx, http.MethodDelete, PathSessions, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.bearer(t, sess.Token).Do(ctx, http.MethodGet, PathWhoami, nil, nil); err == nil {
		t.Error("the session works after logout")
	}
	// A reset kills the password at once.
	if err := admin.Do(ctx, http.MethodPost, PathUsers+"/admin/reset", InviteRequest{}, &inv); err != nil || !strings.Contains(inv.URL, "/web/reset/") {
		t.Fatalf("reset: %+v %v", inv, err)
	}
	if err := anon.Do(ctx, http.MethodPost, PathSessions, LoginRequest{User: "admin", Password: "correct horse battery"}, nil); err == nil {
		t.Error("the old password works after a reset")
	}
	// The audit log has the logins, failed and not, with where from.
	var events []cluster.AuditEvent
	if err := admin.Do(ctx, http.MethodGet, PathAudit, nil, &events); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range events {
		seen[e.Event]++
		if e.From == "" || e.User == "" {
			t.Errorf("event without who or where: %+v", e)
		}
		if net.ParseIP(e.From) == nil {
			t.Errorf("event from %q", e.From)
		}
	}
	for ev, n := range map[string]int{"user.invited": 1, "user.created": 1, "user.login": 2, "user.login.failed": 7, "user.logout": 1, "user.reset": 1} {
		if seen[ev] != n {
			t.Errorf("%d %s events, want %d (all: %v)", seen[ev], ev, n, seen)
		}
	}
}

func jsonOf(t *testing.T, v any) string {
	if v == nil {
		return ""
	}
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func ioCopy(w io.Writer, resp *http.Response) (int64, error) { return io.Copy(w, resp.Body) }

func TestTLSKeyPair(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	issue := func(names []string, ips []net.IP) string {
		kp, err := f.cas.Cluster.Issue(pki.Request{CommonName: "web", DNSNames: names, IPs: ips, Validity: time.Hour, Usages: pki.UsageServer})
		if err != nil {
			t.Fatal(err)
		}
		key, err := kp.KeyPEM()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("kind: tlskeypair\nversion: v2\nmetadata: {name: keypair}\nspec:\n  cert: |\n%s  private_key: |\n%s",
			indent(string(kp.CertPEM())), indent(string(key)))
	}
	if _, err := f.create(t, issue([]string{"cluster.example.com"}, nil), false); err == nil || !strings.Contains(err.Error(), "does not cover the masters' addresses [10.0.0.1]") {
		t.Errorf("a certificate for neither the masters nor the gateway: %v", err)
	}
	gw := "kind: authgateway\nversion: v1\nmetadata: {name: authgateway}\nspec: {public_addr: [\"cluster.example.com\"]}\n---\n"
	if _, err := f.create(t, gw+issue([]string{"cluster.example.com"}, nil), false); err != nil {
		t.Fatalf("a certificate for the gateway's address: %v", err)
	}
	f.api.loadWebCert(ctx)
	for name, want := range map[string]bool{"cluster.example.com": true, "": false, "other.example.com": false} {
		got, err := f.api.web.get(&tls.ClientHelloInfo{ServerName: name})
		if err != nil || got == nil {
			t.Fatalf("SNI %q: no certificate (%v)", name, err)
		}
		if custom := got.Leaf.Subject.CommonName == "web"; custom != want {
			t.Errorf("SNI %q: served the tlskeypair = %v, want %v", name, custom, want)
		}
		// Otherwise: the master's own, of the cluster CA, with the
		// gateway's address added.
		if !want && (got.Leaf.VerifyHostname("cluster.example.com") != nil || got.Leaf.VerifyHostname("10.0.0.1") != nil) {
			t.Errorf("SNI %q: the master's certificate covers %v %v", name, got.Leaf.DNSNames, got.Leaf.IPAddresses)
		}
	}
	// The invitation links now name the gateway's address.
	var inv InviteResponse
	if err := f.admin(t).Do(ctx, http.MethodPost, PathUsers, InviteRequest{Name: "admin", Roles: []string{identity.Admin}}, &inv); err != nil || !strings.HasPrefix(inv.URL, "https://cluster.example.com:3009/web/newuser/") {
		t.Errorf("invite with a gateway: %+v %v", inv, err)
	}
	// Removing it goes back to the masters' own certificates.
	if err := f.admin(t).Do(ctx, http.MethodDelete, PathResources+"/tls/keypair", nil, nil); err != nil {
		t.Fatal(err)
	}
	f.api.loadWebCert(ctx)
	if got, _ := f.api.web.get(&tls.ClientHelloInfo{ServerName: "cluster.example.com"}); got == nil || got.Leaf.Subject.CommonName == "web" {
		t.Error("the removed tlskeypair is still served")
	}
}

func indent(s string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if line != "" {
			b.WriteString("    " + line)
		}
	}
	return b.String()
}

func TestSecondFactor(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	admin, anon := f.admin(t), f.client(t, "", "")
	// A user made before the cluster asked for codes.
	if _, err := f.create(t, "kind: user\nversion: v2\nmetadata: {name: early}\nspec: {roles: [\"@teleadmin\"], password: \"early-password-1\"}\n", false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.create(t, "kind: authpreference\nversion: v2\nmetadata: {name: auth}\nspec: {second_factor: otp}\n", false); err != nil {
		t.Fatal(err)
	}
	var inv InviteResponse
	if err := admin.Do(ctx, http.MethodPost, PathUsers, InviteRequest{Name: "admin", Roles: []string{identity.Admin}}, &inv); err != nil {
		t.Fatal(err)
	}
	secret := inv.URL[strings.LastIndex(inv.URL, "/")+1:]
	var info TicketInfo
	if err := anon.Do(ctx, http.MethodGet, PathInvites+secret, nil, &info); err != nil || info.SecondFactor != "otp" || info.OTPSecret == "" || !strings.HasPrefix(info.OTPURL, "otpauth://totp/c:admin?") {
		t.Fatalf("ticket info = %+v, %v", info, err)
	}
	pw := "correct horse battery"
	if err := anon.Do(ctx, http.MethodPost, PathInvites+secret, PasswordRequest{Password: pw}, nil); err == nil || !strings.Contains(err.Error(), "one-time code is wrong or missing") {
		t.Errorf("signup without a code: %v", err)
	}
	code := func(at time.Time) string {
		c, err := identity.OTPCode(info.OTPSecret, identity.OTPStep(at))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if err := anon.Do(ctx, http.MethodPost, PathInvites+secret, PasswordRequest{Password: pw, OTP: code(f.now)}, nil); err != nil {
		t.Fatalf("signup with the code: %v", err)
	}
	// Logins need the next code: the one used at signup is spent.
	if err := anon.Do(ctx, http.MethodPost, PathSessions, LoginRequest{User: "admin", Password: pw, OTP: code(f.now)}, nil); err == nil {
		t.Error("a code was accepted twice")
	}
	if err := anon.Do(ctx, http.MethodPost, PathSessions, LoginRequest{User: "admin", Password: pw}, nil); err == nil {
		t.Error("a login without a code was accepted")
	}
	f.now = f.now.Add(30 * time.Second)
	if err := anon.Do(ctx, http.MethodPost, PathSessions, LoginRequest{User: "admin", Password: pw, OTP: code(f.now)}, nil); err != nil {
		t.Errorf("a login with a fresh code: %v", err)
	}
	err := anon.Do(ctx, http.MethodPost, PathSessions, LoginRequest{User: "early", Password: "early-password-1"}, nil)
	if err == nil || !strings.Contains(err.Error(), "gravity users reset early") {
		t.Errorf("a user without a second factor: %v", err)
	}
	if err := anon.Do(ctx, http.MethodPost, PathSessions, LoginRequest{User: "early", Password: "wrong-password-1"}, nil); err == nil || err.Error() != errBadLogin.Error() {
		t.Errorf("a wrong password tells more than that: %v", err)
	}
}
