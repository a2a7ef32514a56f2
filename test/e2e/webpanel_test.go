//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/opengravity/gravity/internal/pki"
)

// webPanelMetrics are what checkWebPanel measured.
type webPanelMetrics struct {
	// FirstLoadBytes is what the browser received for the dashboard's
	// first load (after signup, nothing cached): the page, its assets
	// and the API's answers.
	FirstLoadBytes int64
	// ToDashboard is from the login form's submission to the dashboard
	// showing the node.
	ToDashboard time.Duration
}

// panelViewerRole sees the cluster and its operations, and nothing else.
const panelViewerRole = `kind: role
version: v3
metadata:
  name: panel-viewer
spec:
  allow:
    rules:
      - resources: [cluster, operation]
        verbs: [list, read]
`

// browserProfile is the browser's fresh user data dir, in the browser
// host's own /var.
const browserProfile = "/var/lib/gravity-e2e-browser"

// egressTag names the browser host's counting rule.
const egressTag = "gravity-e2e-web-egress"

// checkWebPanel drives the web control panel of ih's installed cluster
// with Chromium, as a user would: sign up through an invitation link, the
// dashboard, logout, login through the form, an invitation from the users
// page, the nodes, operations, audit and certificate pages, logout; then a
// user whose role sees less, and the end of their session. The
// browser runs on a host of its own on the cluster's network, trusting
// only the cluster's own certificate (pinned by its key), and whatever it
// sends anywhere but the cluster's hosts is counted and fails the test.
// Each page's screenshot goes to $GRAVITY_SCREENSHOTS (build/screenshots).
func checkWebPanel(t testing.TB, ih *installHost) webPanelMetrics {
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatal("the web panel test needs Debian's chromium (make deps)")
	}
	began := time.Now()
	ip := ih.h.IP.String()
	base := "https://" + ip + ":32009"
	shots := os.Getenv("GRAVITY_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(repo, "build/screenshots")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	name := strings.Fields(grepLine(ih.mustRun("gravity", "status"), "Cluster name:"))
	if len(name) != 3 {
		t.Fatalf("no cluster name in gravity status (%q)", name)
	}
	cluster := name[2]
	web := ih.browserHost()
	spki := clusterCertSPKI(t, ih, ip+":32009")
	egress := countEgress(t, web, ih)

	out := ih.mustRun("gravity", "users", "add", "--roles=@teleadmin", "webadmin")
	link := regexp.MustCompile(`https://` + regexp.QuoteMeta(ip) + `:3009/web/newuser/[0-9a-f]{64}`).FindString(out)
	if link == "" {
		t.Fatalf("gravity users add printed:\n%s", out)
	}

	ctx, cancel := context.WithTimeout(ih.ctx, 5*time.Minute)
	defer cancel()
	web.mustRun("rm", "-rf", browserProfile)
	web.mustRun("mkdir", "-p", browserProfile)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("/usr/bin/chromium"),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox,
		chromedp.UserDataDir(browserProfile),
		// The cluster's certificate, and no other, is trusted: the cluster
		// CA is in no trust store of the browser host.
		chromedp.Flag("ignore-certificate-errors-spki-list", spki),
		chromedp.WindowSize(1280, 900),
		// Nothing of the browser's own (updates, metrics, suggestions):
		// what it sends elsewhere is the panel's.
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints,AutofillServerCommunication,"+
			"CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions,DialMediaRouteProvider"),
		chromedp.NoInheritEnv,
		chromedp.Env("HOME=/root", "LANG=C.UTF-8", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			// Started in the browser host, with its DevTools pipe (fds 3
			// and 4) passed through nsenter.
			in := web.h.Command(ctx, cmd.Path, cmd.Args[1:]...)
			cmd.Path, cmd.Args = in.Path, in.Args
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		}),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()

	// What the page loads, and what it says went wrong.
	var mu sync.Mutex
	urls := map[network.RequestID]string{}
	var received []struct {
		url   string
		bytes float64
	}
	var problems []string
	err := chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			urls[e.RequestID] = e.Request.Method + " " + e.Request.URL
		case *network.EventLoadingFinished:
			received = append(received, struct {
				url   string
				bytes float64
			}{urls[e.RequestID], e.EncodedDataLength})
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+e.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError && !strings.Contains(e.Entry.Text, "401") {
				problems = append(problems, string(e.Entry.Source)+": "+e.Entry.Text)
			}
		}
	})
	if err != nil {
		t.Fatalf("starting Chromium in %s: %v", web.h.Name, err)
	}
	shot := func(name string) {
		t.Helper()
		buf, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot of %s: %v", name, err)
		}
		path := filepath.Join(shots, name+".png")
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot of the %s page: %s", name, path)
	}
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			page, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
			t.Fatalf("%s: %v\nthe page shows:\n%s", what, err, page)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	// waitText waits until sel's text has want: the pages fill in as the
	// API answers.
	waitText := func(sel, want string) {
		t.Helper()
		js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.innerText.includes(%q); })()`, sel, want)
		if _, err := chromedp.Run(bctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
			t.Fatalf("waiting for %q in %s: %v (it has %q)", want, sel, err, text(sel))
		}
	}

	// Signup, from the invitation link, lands on the dashboard.
	do("opening the invitation link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#password")))
	shot("signup")
	mu.Lock()
	before := len(received)
	mu.Unlock()
	do("signing up",
		chromedp.SendKeys(chromedp.CSS("#password"), "web-panel-admin-1"),
		chromedp.SendKeys(chromedp.CSS("#confirm"), "web-panel-admin-1"),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#dash-nodes")))
	waitText("#dash-nodes", ip)
	waitText("#dash-app", "0.0.1")
	waitText("#dash-health", "healthy")
	waitText("#cluster-name", cluster)
	shot("dashboard")
	var m webPanelMetrics
	mu.Lock()
	for _, r := range received[before:] {
		if !strings.HasPrefix(r.url, "POST ") { // the signup form's post
			m.FirstLoadBytes += int64(r.bytes)
			t.Logf("first load: %6.0f bytes %s", r.bytes, r.url)
		}
	}
	mu.Unlock()

	// Logout, and login through the form.
	do("logging out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	waitText("#cluster-name", cluster) // before anyone logged in
	waitText("#login-form", "")
	shot("login")
	do("filling the login form",
		chromedp.SendKeys(chromedp.CSS("#user"), "webadmin"),
		chromedp.SendKeys(chromedp.CSS("#password"), "web-panel-admin-1"))
	start := time.Now()
	do("logging in", chromedp.Click(chromedp.CSS("#login")), chromedp.WaitVisible(chromedp.CSS("#dash-nodes")))
	waitText("#dash-nodes", ip)
	m.ToDashboard = time.Since(start)

	// An invitation from the users page.
	do("the users page", chromedp.Navigate(base+"/web/#/users"), chromedp.WaitVisible(chromedp.CSS("#invite-name")))
	waitText("#users", "webadmin")
	do("inviting", chromedp.SendKeys(chromedp.CSS("#invite-name"), "webuser2"), chromedp.Click(chromedp.CSS("#invite")),
		chromedp.WaitVisible(chromedp.CSS("#invite-url")))
	if url := text("#invite-url"); !regexp.MustCompile(`^https://` + regexp.QuoteMeta(ip) + `:3009/web/newuser/[0-9a-f]{64}$`).MatchString(url) {
		t.Errorf("the users page's invitation URL: %q", url)
	}
	shot("users")

	do("the nodes page", chromedp.Navigate(base+"/web/#/nodes"), chromedp.WaitVisible(chromedp.CSS("#join")))
	waitText("#nodes", ip)
	waitText("#join", "sudo ./gravity join "+ip+" --token=")
	shot("nodes")

	do("the operations page", chromedp.Navigate(base+"/web/#/operations"), chromedp.WaitVisible(chromedp.CSS("table.plan")))
	waitText("main", "completed")
	shot("operations")

	do("the audit page", chromedp.Navigate(base+"/web/#/audit"), chromedp.WaitVisible(chromedp.CSS("#audit tbody tr")))
	waitText("#audit", "user.login")
	waitText("#audit", "invited webuser2")
	shot("audit")

	do("the certificate page", chromedp.Navigate(base+"/web/#/certificate"), chromedp.WaitVisible(chromedp.CSS("#cert-served")))
	waitText("#cert-served", ip)
	shot("certificate")

	do("logging out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	// The session is gone: the panel asks for a login again.
	do("the users page after logout", chromedp.Navigate(base+"/web/#/users"), chromedp.WaitVisible(chromedp.CSS("#login-form")))

	// A user whose role sees the cluster and its operations only: the
	// panel shows no more (the API refuses the rest anyway).
	ih.put(writeTemp(t, panelViewerRole), "/root/panel-viewer.yaml")
	ih.mustRun("gravity", "resource", "create", "/root/panel-viewer.yaml")
	out = ih.mustRun("gravity", "users", "add", "--roles=panel-viewer", "webviewer")
	if link = regexp.MustCompile(`https://\S+/web/newuser/[0-9a-f]{64}`).FindString(out); link == "" {
		t.Fatalf("gravity users add printed:\n%s", out)
	}
	do("the viewer's signup", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#password")),
		chromedp.SendKeys(chromedp.CSS("#password"), "web-panel-viewer-1"),
		chromedp.SendKeys(chromedp.CSS("#confirm"), "web-panel-viewer-1"),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#dash-nodes")))
	waitText("#dash-nodes", ip)
	hidden, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("nav a")].filter((a) => a.hidden).map((a) => a.dataset.page)`))
	if err != nil || strings.Join(hidden, " ") != "users audit certificate" {
		t.Errorf("the viewer's menu hides %q (%v), want users, audit and certificate", hidden, err)
	}
	do("the viewer's nodes page", chromedp.Navigate(base+"/web/#/nodes"), chromedp.WaitVisible(chromedp.CSS("#nodes tbody tr")))
	if join, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`!!document.getElementById("join")`)); err != nil || join {
		t.Errorf("the viewer is shown the join command (%v)", err)
	}
	do("the viewer at the users page", chromedp.Navigate(base+"/web/#/users"))
	waitText("main", "Access denied")
	// A session that ends under the page (a reset ends the user's
	// sessions) sends the panel to the login, saying so.
	do("the viewer's dashboard", chromedp.Navigate(base+"/web/#/"), chromedp.WaitVisible(chromedp.CSS("#dash-nodes")))
	ih.mustRun("gravity", "users", "reset", "webviewer")
	do("the session's end", chromedp.WaitVisible(chromedp.CSS("#expired")))
	waitText("#expired", "Your session has expired: log in again")
	shot("expired")

	mu.Lock()
	for _, p := range problems {
		t.Errorf("the browser reported %s", p)
	}
	mu.Unlock()
	sent := egress.dropped()
	t.Logf("packets the browser host sent elsewhere than loopback and the cluster's hosts: %d", sent)
	if sent != 0 {
		t.Errorf("the browser sent %d packets to addresses other than the cluster's", sent)
	}
	// The counter counts: a page elsewhere (TEST-NET-1, which nothing
	// answers) is tried, and dropped.
	elsewhere, cancelElsewhere := context.WithTimeout(bctx, 3*time.Second)
	_ = chromedp.Do(elsewhere, chromedp.Navigate("https://192.0.2.1/"))
	cancelElsewhere()
	if after := egress.dropped(); after == sent {
		t.Errorf("a page at 192.0.2.1 sent nothing the browser host counted: the count above proves nothing")
	} else {
		t.Logf("a page at 192.0.2.1, for comparison: %d packets counted", after-sent)
	}
	cancelBrowser()
	cancelAlloc()
	egress.remove()
	t.Logf("web panel: first load of the dashboard %d bytes, login to dashboard %s; the checks took %s",
		m.FirstLoadBytes, m.ToDashboard.Round(time.Millisecond), time.Since(began).Round(100*time.Millisecond))
	return m
}

// browserHost is a host of ih's network for the browser alone, made once.
func (ih *installHost) browserHost() *installHost {
	for _, o := range *ih.others {
		if o.h.Name == "web" {
			return o
		}
	}
	return ih.addHost("web")
}

// clusterCertSPKI is the base64 SHA-256 of the public key of the
// certificate the cluster serves at addr, once it is checked against the
// cluster's CA: what Chromium's --ignore-certificate-errors-spki-list
// trusts.
func clusterCertSPKI(t testing.TB, ih *installHost, addr string) string {
	caPEM, err := os.ReadFile(ih.h.Path("/var/lib/gravity/secrets/ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatalf("the cluster management URL's certificate is not of the cluster CA: %v", err)
	}
	defer conn.Close()
	leaf := conn.ConnectionState().PeerCertificates[0]
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	t.Logf("the browser trusts %s (%s)", leaf.Subject, pki.Fingerprint(leaf))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// egressCounter counts what a host sends outside its subnet.
type egressCounter struct {
	t     testing.TB
	web   *installHost
	rules [][]string
	done  bool
}

// countEgress routes everything of web's outside the subnet to a rule of
// its own namespace that drops and counts it (a host has no route out, so
// a connect elsewhere would fail without a packet); loopback and the
// cluster's hosts pass.
func countEgress(t testing.TB, web, ih *installHost) *egressCounter {
	c := &egressCounter{t: t, web: web, rules: [][]string{{"-o", "lo", "-j", "ACCEPT"}}}
	for _, h := range ih.net.Hosts() {
		if h.Name != web.h.Name {
			c.rules = append(c.rules, []string{"-d", h.IP.String(), "-j", "ACCEPT"})
		}
	}
	c.rules = append(c.rules, []string{"-j", "DROP"})
	for _, r := range c.rules {
		web.mustRun("iptables", append([]string{"-w", "-A", "OUTPUT"}, append(r, "-m", "comment", "--comment", egressTag)...)...)
	}
	web.mustRun("ip", "route", "add", "default", "via", ih.net.BridgeIP().String())
	t.Cleanup(c.remove)
	return c
}

// dropped is how many packets the counting rule dropped so far.
func (c *egressCounter) dropped() int64 {
	saved := c.web.mustRun("iptables-save", "-c", "-t", "filter")
	for _, line := range strings.Split(saved, "\n") {
		if strings.Contains(line, egressTag) && strings.HasSuffix(strings.TrimSpace(line), "-j DROP") {
			pk, _, _ := strings.Cut(strings.Trim(strings.Fields(line)[0], "[]"), ":")
			n, err := strconv.ParseInt(pk, 10, 64)
			if err != nil {
				c.t.Fatalf("counters of %q: %v", line, err)
			}
			return n
		}
	}
	c.t.Fatalf("no counting rule in the browser host:\n%s", saved)
	return 0
}

// remove takes the route and the rules away.
func (c *egressCounter) remove() {
	if c.done {
		return
	}
	c.done = true
	c.web.mustRun("ip", "route", "del", "default")
	for _, r := range c.rules {
		c.web.mustRun("iptables", append([]string{"-w", "-D", "OUTPUT"}, append(r, "-m", "comment", "--comment", egressTag)...)...)
	}
}
