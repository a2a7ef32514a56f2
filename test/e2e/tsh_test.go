//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opengravity/gravity/internal/tsh"
)

// buildBox runs tsh and kubectl as the walkthrough's build machine does:
// this test's own process, outside the hosts, with its own ~/.tsh and
// ~/.kube/config.
type buildBox struct {
	t    testing.TB
	home string
}

func newBuildBox(t testing.TB) *buildBox {
	return &buildBox{t: t, home: t.TempDir()}
}

func (b *buildBox) run(stdin string, name string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(repo, "build", name), args...)
	cmd.Env = append(os.Environ(), "HOME="+b.home, "TSH_HOME="+filepath.Join(b.home, ".tsh"),
		"KUBECONFIG="+filepath.Join(b.home, ".kube", "config"))
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (b *buildBox) mustRun(stdin, name string, args ...string) string {
	b.t.Helper()
	out, err := b.run(stdin, name, args...)
	if err != nil {
		b.t.Fatalf("build box: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func (b *buildBox) mustFail(want, stdin, name string, args ...string) {
	b.t.Helper()
	out, err := b.run(stdin, name, args...)
	if err == nil || !strings.Contains(out, want) {
		b.t.Errorf("build box: %s %s: want a failure saying %q, got %v:\n%s", name, strings.Join(args, " "), want, err, out)
	}
}

// checkTsh runs the walkthrough's tsh steps from the build box against the
// installed cluster (its admin signed up in checkUsers), then what the
// issue asks of revocation, roles and recordings.
func checkTsh(t *testing.T, ih *installHost) {
	ip := ih.h.IP.String()
	admin := newBuildBox(t)
	start := time.Now()
	out := admin.mustRun("walkthrough-admin-1\n", "tsh", "--insecure", "login", "--proxy="+ip+":32009", "--user=admin")
	t.Logf("tsh login took %v", time.Since(start))
	for _, want := range []string{"Logged in as: admin", "Roles:        @teleadmin", "Logins:       root", "[valid for 30h0m0s]"} {
		if !strings.Contains(out, want) {
			t.Errorf("tsh login printed no %q:\n%s", want, out)
		}
	}
	for _, f := range []string{".tsh/keys/" + ip + "/key", ".tsh/keys/" + ip + "/tls.crt", ".tsh/keys/" + ip + "/key-cert.pub"} {
		if fi, err := os.Stat(filepath.Join(admin.home, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, err, fi)
		}
	}
	// Without --insecure, the first contact of another box fails on the
	// cluster's own CA, naming it.
	newBuildBox(t).mustFail("is not signed by a CA this machine trusts", "walkthrough-admin-1\n", "tsh", "login", "--proxy="+ip+":32009", "--user=admin")
	newBuildBox(t).mustFail("invalid user name, password or one-time code", "wrong-password-123\n", "tsh", "--insecure", "login", "--proxy="+ip+":32009", "--user=admin")
	newBuildBox(t).mustFail("not a gravity cluster's proxy", "x\n", "tsh", "--insecure", "login", "--proxy="+ip+":10250", "--user=admin")

	ls := admin.mustRun("", "tsh", "ls")
	if !regexp.MustCompile(`(?m)^Node Name +Address +Labels\n-+ +-+ +-+\n\S+ +` + regexp.QuoteMeta(ip) + `:3022 +advertise-ip=` +
		regexp.QuoteMeta(ip) + `,hostname=\S+,master=true,role=node$`).MatchString(ls) {
		t.Errorf("tsh ls:\n%s", ls)
	}
	start = time.Now()
	status := admin.mustRun("", "tsh", "ssh", "root@role=node", "gravity", "status")
	t.Logf("tsh ssh root@role=node gravity status took %v", time.Since(start))
	if !strings.Contains(status, "Cluster endpoints:") || !strings.Contains(status, ip) {
		t.Errorf("gravity status through tsh ssh:\n%s", status)
	}
	if out, err := admin.run("", "tsh", "ssh", "root@"+ip, "exit 3"); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("a remote exit status 3 came back as %v:\n%s", err, out)
	}
	admin.mustFail(`no node matches "role=db"`, "", "tsh", "ssh", "root@role=db", "true")
	admin.mustFail(`login "nobody" is not allowed by the roles of admin`, "", "tsh", "ssh", "nobody@role=node", "true")
	// The node's SSH service takes no certificate but the proxy's hop:
	// the user's own, valid as it is, is refused there.
	prof, err := tsh.Load(filepath.Join(admin.home, ".tsh"), ip+":32009")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := prof.SSHSigner()
	if err != nil {
		t.Fatal(err)
	}
	if c, err := ssh.Dial("tcp", ip+":3022", &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}); err == nil {
		c.Close()
		t.Errorf("the node's SSH service took a user's certificate directly")
	}

	nodes := admin.mustRun("", "kubectl", "get", "nodes")
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(ip) + ` +Ready +control-plane`).MatchString(nodes) {
		t.Errorf("kubectl get nodes on the build box:\n%s", nodes)
	}
	admin.mustRun("", "kubectl", "get", "pods", "--all-namespaces", "-owide")

	// A recorded session, replayed.
	admin.mustRun("", "tsh", "ssh", "-t", "root@"+ip, "echo recorded-$((6*7))")
	recs := admin.mustRun("", "tsh", "recordings")
	m := regexp.MustCompile(`(?m)^([0-9a-f]{16}) +admin +root +` + regexp.QuoteMeta(ip)).FindStringSubmatch(recs)
	if m == nil {
		t.Fatalf("tsh recordings:\n%s", recs)
	}
	if play := admin.mustRun("", "tsh", "play", m[1]); !strings.Contains(play, "recorded-42") {
		t.Errorf("tsh play %s:\n%q", m[1], play)
	}
	// A file there and back.
	local := writeTemp(t, "copied through the proxy\n")
	admin.mustRun("", "tsh", "scp", local, "root@"+ip+":/root/scp'd file")
	if got := ih.mustRun("cat", "/root/scp'd file"); got != "copied through the proxy\n" {
		t.Errorf("tsh scp up: %q", got)
	}
	back := filepath.Join(t.TempDir(), "back")
	admin.mustRun("", "tsh", "scp", "root@"+ip+":/root/scp'd file", back)
	if got, _ := os.ReadFile(back); string(got) != "copied through the proxy\n" {
		t.Errorf("tsh scp down: %q", got)
	}
	audit := ih.mustRun("gravity", "audit")
	for _, ev := range []string{"cert.create", "exec", "session.end", "session.rejected"} {
		if !strings.Contains(audit, ev) {
			t.Errorf("gravity audit lacks %s", ev)
		}
	}

	// A user whose role has no Kubernetes groups gets Forbidden from
	// Kubernetes; once removed, their saved certificate is refused.
	ih.put(writeTemp(t, `kind: role
version: v3
metadata:
  name: ops
spec:
  allow:
    logins: [root]
    node_labels:
      "*": "*"
    rules:
      - resources: [node]
        verbs: [list]
  options:
    max_session_ttl: 1h
---
kind: user
version: v2
metadata:
  name: carol
spec:
  type: regular
  roles: [ops]
  password: carol-password-1
`), "/root/carol.yaml")
	ih.mustRun("gravity", "resource", "create", "/root/carol.yaml")
	carol := newBuildBox(t)
	if out := carol.mustRun("carol-password-1\n", "tsh", "--insecure", "login", "--proxy="+ip+":3009", "--user=carol"); !strings.Contains(out, "[valid for 1h0m0s]") {
		t.Errorf("carol's login:\n%s", out)
	}
	carol.mustFail(`nodes is forbidden: User "carol" cannot list resource "nodes"`, "", "kubectl", "get", "nodes")
	carol.mustRun("", "tsh", "ssh", "root@"+ip, "true")
	ih.mustRun("gravity", "users", "rm", "carol")
	carol.mustFail("no longer exists", "", "kubectl", "get", "nodes")
	carol.mustFail("log in again", "", "tsh", "ssh", "root@"+ip, "true")

	out = admin.mustRun("", "tsh", "logout")
	if !strings.Contains(out, "Logged out admin") {
		t.Errorf("tsh logout: %s", out)
	}
	admin.mustFail("not logged in", "", "tsh", "ls")
	if kc, _ := os.ReadFile(filepath.Join(admin.home, ".kube", "config")); strings.Contains(string(kc), ip) {
		t.Errorf("the kubeconfig keeps the context after logout:\n%s", kc)
	}
	// Memory of the proxy (a master's) and of the node's SSH service.
	rss := ih.mustRun("sh", "-c", "ps -eo rss=,args= | grep -E 'runtime (access-proxy|ssh) ' | grep -v grep")
	t.Logf("resident memory (KiB):\n%s", rss)
}

// benchTsh reports tsh login's time, the round trip of `tsh ssh <node>
// true` (median of 10) and the memory of the access proxy and the node's
// SSH service after them.
func benchTsh(b *testing.B, ih *installHost) {
	ip := ih.h.IP.String()
	ih.put(writeTemp(b, "kind: user\nversion: v2\nmetadata: {name: tshbench}\nspec: {type: admin, roles: [\"@teleadmin\"], password: bench-password-12}\n"), "/root/bench.yaml")
	ih.mustRun("gravity", "resource", "create", "/root/bench.yaml")
	box := newBuildBox(b)
	start := time.Now()
	box.mustRun("bench-password-12\n", "tsh", "--insecure", "login", "--proxy="+ip+":32009", "--user=tshbench")
	b.ReportMetric(time.Since(start).Seconds(), "s-tsh-login")
	var trips []time.Duration
	for range 10 {
		start := time.Now()
		box.mustRun("", "tsh", "ssh", "root@"+ip, "true")
		trips = append(trips, time.Since(start))
	}
	slices.Sort(trips)
	b.Logf("tsh ssh %s true: min %v, median %v, max %v", ip, trips[0], trips[len(trips)/2], trips[len(trips)-1])
	b.ReportMetric(float64(trips[len(trips)/2].Milliseconds()), "ms-tsh-ssh-true")
	_, byName := hostMemory(b, ih.h.Path("/proc"))
	b.ReportMetric(float64(byName["gravity runtime access-proxy"].rss)/(1<<20), "MiB-access-proxy-rss")
	b.ReportMetric(float64(byName["gravity runtime ssh"].rss)/(1<<20), "MiB-node-ssh-rss")
}
