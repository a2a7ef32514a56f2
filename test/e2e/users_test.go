//go:build e2e

package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// checkUsers runs the walkthrough's "Accessing Web UI" and "Configuring
// The Cluster" parts on an installed cluster: the endpoints, the first
// admin's invitation completed as a browser would, the seed's agent.yaml,
// and its token against the API.
func checkUsers(t *testing.T, ih *installHost) {
	ip := ih.h.IP.String()
	status := ih.mustRun("gravity", "status")
	for _, want := range []string{"    * Authentication gateway:\n        - " + ip + ":32009\n",
		"    * Cluster management URL:\n        - https://" + ip + ":32009\n", "Web certificate fingerprint:\n        - SHA256:"} {
		if !strings.Contains(status, want) {
			t.Errorf("gravity status lacks %q:\n%s", want, status)
		}
	}

	out := ih.mustRun("gravity", "users", "add", "--roles=@teleadmin", "admin")
	m := regexp.MustCompile(`(?m)^Signup token has been created and is valid for 8h0m0s hours\. Share this URL with the user:\n(https://` +
		regexp.QuoteMeta(ip) + `:3009/web/newuser/[0-9a-f]{64})$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("gravity users add printed:\n%s", out)
	}
	ih.mustFail("between 1m and 48h0m0s", "gravity", "users", "add", "--roles=@teleadmin", "--ttl=49h", "bob")
	ih.mustFail(`role "nosuch" does not exist`, "gravity", "users", "add", "--roles=nosuch", "bob")

	// The browser trusts the cluster CA; it opens the link, sets the
	// password, and is then signed in at the management URL too.
	caPEM, err := os.ReadFile(ih.h.Path("/var/lib/gravity/secrets/ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	page := func(resp *http.Response, err error) (int, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := page(browser.Get(m[1])); code != 200 || !strings.Contains(body, `value="admin"`) {
		t.Fatalf("the signup page: %d\n%s", code, body)
	}
	form := url.Values{"password": {"walkthrough-admin-1"}, "confirm": {"walkthrough-admin-1"}}
	// Signing up lands on the control panel's dashboard.
	if code, body := page(browser.PostForm(m[1], form)); code != 200 || !strings.Contains(body, `src="/web/assets/panel.js"`) {
		t.Fatalf("signing up: %d\n%s", code, body)
	}
	if code, _ := page(browser.PostForm(m[1], form)); code != http.StatusNotFound {
		t.Errorf("the invitation worked twice (%d)", code)
	}
	ih.mustFail(`user "admin" already exists`, "gravity", "users", "add", "--roles=@teleadmin", "admin")
	code, body := page(browser.Get("https://" + ip + ":32009/v1/whoami"))
	var me struct{ User, Type string }
	if code != 200 || json.Unmarshal([]byte(body), &me) != nil || me.User != "admin" || me.Type != "admin" {
		t.Errorf("whoami at the management URL after signup: %d %s", code, body)
	}

	// The seed's agent user and its token.
	ih.put(filepath.Join(repo, "examples/gravity101/agent.yaml"), "/root/agent.yaml")
	if out := strings.TrimSpace(ih.mustRun("gravity", "resource", "create", "/root/agent.yaml")); out != "Created user \"agent@example.com\"\nCreated token for user \"agent@example.com\"" {
		t.Errorf("resource create printed %q", out)
	}
	ih.mustFail(`user "agent@example.com" already exists: --force replaces it`, "gravity", "resource", "create", "/root/agent.yaml")
	users := ih.mustRun("gravity", "resource", "get", "users")
	if !regexp.MustCompile(`(?m)^Name +Type +Roles\n---- +---- +-----\nadmin +admin +\[@teleadmin\]\nagent@example.com +agent +\[@teleadmin\]$`).MatchString(users) {
		t.Errorf("gravity resource get users:\n%s", users)
	}
	tokens := ih.mustRun("gravity", "resource", "get", "tokens", "--user=agent@example.com")
	if !regexp.MustCompile(`(?m)^Token +User +Expires\n----- +---- +-------\nqwe123 +agent@example.com +never$`).MatchString(tokens) {
		t.Errorf("gravity resource get tokens:\n%s", tokens)
	}
	ih.mustFail("please specify user via --user flag", "gravity", "resource", "get", "tokens")
	ih.put(writeTemp(t, "kind: user\nversion: v2\nmetadata:\n  name: bob\nspec:\n  roles: [\"@teleadmin\"]\n  rolez: []\n"), "/root/bad.yaml")
	ih.mustFail("/root/bad.yaml:7: spec.rolez: unknown field", "gravity", "resource", "create", "/root/bad.yaml")

	// The token against the API, as docs/api.md shows it.
	curl := ih.mustRun("curl", "-sSf", "--cacert", "/var/lib/gravity/secrets/ca.crt", "-H", "Authorization: Bearer qwe123",
		"https://"+ip+":3009/v1/resources/users")
	if !strings.Contains(curl, `"name":"agent@example.com"`) {
		t.Errorf("curl with qwe123: %s", curl)
	}
	ih.mustFail("401", "curl", "-sSf", "--cacert", "/var/lib/gravity/secrets/ca.crt", "-H", "Authorization: Bearer qwe124",
		"https://"+ip+":3009/v1/resources/users")
	// @teleadmin's Kubernetes group is bound to cluster-admin, view to view.
	for group, want := range map[string]string{"admin": "yes", "view": "no"} {
		// The answer's first line; kubectl warns on the next ones.
		if got, _ := ih.run("kubectl", "auth", "can-i", "delete", "nodes", "--as=someone", "--as-group="+group); strings.SplitN(got, "\n", 2)[0] != want {
			t.Errorf("group %s may delete nodes: %q, want %s", group, got, want)
		}
	}
	audit := ih.mustRun("gravity", "audit")
	for _, ev := range []string{"user.invited", "user.created", "token.created"} {
		if !strings.Contains(audit, ev) {
			t.Errorf("gravity audit lacks %s:\n%s", ev, audit)
		}
	}
}
