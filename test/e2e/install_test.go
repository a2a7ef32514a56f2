//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/runtime/node"
	"github.com/opengravity/gravity/internal/testhost"
)

// installHost is one fresh test host that cluster images are installed
// on, as a new user would: from `tar -xf`, with `sudo ./gravity install`.
type installHost struct {
	t    testing.TB
	ctx  context.Context
	net  *testhost.Network
	h    *testhost.Host
	work string
	// others are the hosts addHost made on the same network, whose
	// cgroups go with the first's, after the network.
	others *[]*installHost
}

// addHost makes another host on ih's network.
func (ih *installHost) addHost(name string) *installHost {
	h, err := ih.net.AddHost(ih.ctx, name)
	if err != nil {
		ih.t.Fatal(err)
	}
	o := &installHost{t: ih.t, ctx: ih.ctx, net: ih.net, h: h, work: ih.work, others: ih.others}
	*ih.others = append(*ih.others, o)
	return o
}

const planFile = "/var/lib/gravity/local/plan.json"

// TestInstall installs the walkthrough's v1 image on a fresh test host:
// bad input refused with nothing changed; the installer killed (-9) in
// three phases and resumed; the result checked with kubectl, helm and
// gravity status; the v2 upgrade hook's helm command run by hand; leave
// --force. Then an app whose install hook fails: its logs shown, the plan
// rolled back to a clean host, installed again, fixed and resumed.
func TestInstall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	ih := newInstallHost(t, ctx, "gin", "10.235.0.0/24")
	v1 := ih.unpack("v1", ih.buildImage(filepath.Join(repo, "examples/gravity101/v1"), "v1"))
	v2tar := ih.buildImage(filepath.Join(repo, "examples/gravity101/v2"), "v2")
	v2 := ih.unpack("v2", v2tar)
	// A delta: without what v2 has (alpine:3.4's layers among them).
	v3 := ih.unpack("failupdate", ih.buildImage(filepath.Join(repo, "test/e2e/testdata/failupdate"), "failupdate", "--from", v2tar))
	fixed := ih.unpack("fixupdate", ih.buildImage(fixedApp(t, ih.work), "fixupdate", "--from", v2tar))
	failing := ih.unpack("failhook", ih.buildImage(filepath.Join(repo, "test/e2e/testdata/failhook"), "failhook"))

	t.Run("refused", func(t *testing.T) { testRefused(t, ih, v1) })
	t.Run("kill-resume", func(t *testing.T) { testKillResume(t, ih, v1) })
	t.Run("installed", func(t *testing.T) { testInstalled(t, ih, v1) })
	t.Run("upgrade", func(t *testing.T) { testUpgrade(t, ih, v2, v3) })
	t.Run("upgrade-rollback", func(t *testing.T) { testUpgradeRollback(t, ih, v3, fixed) })
	t.Run("join", func(t *testing.T) { testJoinWorker(t, ih) })
	t.Run("leave", func(t *testing.T) {
		ih.mustRun("gravity", "leave", "--force")
		ih.assertClean()
	})
	t.Run("hook-failure", func(t *testing.T) { testHookFailure(t, ih, failing) })

	if drops, err := ih.net.EgressDrops(ctx); err != nil || drops != 0 {
		t.Errorf("packets dropped leaving the test hosts: %d (%v)", drops, err)
	}
}

func newInstallHost(t testing.TB, ctx context.Context, prefix, subnet string) *installHost {
	ih := &installHost{t: t, ctx: ctx, work: filepath.Join(repo, "build/e2e", prefix), others: &[]*installHost{}}
	if err := os.RemoveAll(ih.work); err != nil {
		t.Fatal(err)
	}
	net, err := testhost.NewNetwork(ctx, testhost.Options{Prefix: prefix, Subnet: subnet, Routed: []string{config.DefaultPodCIDR}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := net.AddHost(ctx, "h1")
	if err != nil {
		net.Close()
		t.Fatal(err)
	}
	ih.net, ih.h = net, h
	// Last registered runs first: the network (and every process) goes,
	// then the cgroups kubelet made on the shared kernel.
	t.Cleanup(func() {
		ih.removeCgroups()
		for _, o := range *ih.others {
			o.removeCgroups()
		}
	})
	t.Cleanup(func() { _ = net.Close() })
	return ih
}

func (ih *installHost) removeCgroups() {
	n, err := config.Node{IP: ih.h.IP.AsSlice(), ClusterName: "x", MasterIPs: []net.IP{ih.h.IP.AsSlice()},
		NodePodCIDR: "10.244.0.0/24"}.WithDefaults()
	if err != nil {
		ih.t.Error(err)
		return
	}
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		ih.t.Error(err)
		return
	}
	defer mi.Close()
	if err := node.RemoveCgroups(mi, n.CgroupRoot); err != nil {
		ih.t.Errorf("cgroups left: %v", err)
	}
}

// buildImage runs tele build on appDir with its own state dir holding the
// example images (make example-images).
func (ih *installHost) buildImage(appDir, name string, args ...string) string {
	t := ih.t
	tele := filepath.Join(repo, "build/tele")
	state := filepath.Join(ih.work, "state")
	images, _ := filepath.Glob(filepath.Join(repo, "build/example-images/*.oci.tar"))
	if len(images) == 0 {
		t.Fatal("no example images: run `make example-images`")
	}
	if out, err := exec.Command(tele, append([]string{"--state-dir", state, "image", "load"}, images...)...).CombinedOutput(); err != nil {
		t.Fatalf("tele image load: %v\n%s", err, out)
	}
	out := filepath.Join(ih.work, name+".tar")
	cmd := exec.Command(tele, append([]string{"--state-dir", state, "build", filepath.Join(appDir, "app.yaml"), "-o", out}, args...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tele build %s: %v\n%s", appDir, err, b)
	}
	return out
}

// unpack copies a cluster image into the host and unpacks it there, as
// its user would; it returns the directory as the host sees it. Nothing
// relies on the host seeing the repository (it has its own /tmp).
func (ih *installHost) unpack(name, tarball string) string {
	dir := "/root/" + name
	ih.put(tarball, dir+".tar")
	ih.mustRun("mkdir", "-p", dir)
	ih.mustRun("tar", "-xf", dir+".tar", "-C", dir)
	return dir
}

// put copies src from the real machine to dst in the host.
func (ih *installHost) put(src, dst string) {
	if err := ih.h.CopyIn(src, dst); err != nil {
		ih.t.Fatal(err)
	}
}

func (ih *installHost) run(name string, args ...string) (string, error) {
	out, errOut, err := ih.h.Run(ih.ctx, name, args...)
	return out + errOut, err
}

func (ih *installHost) mustRun(name string, args ...string) string {
	ih.t.Helper()
	out, err := ih.run(name, args...)
	if err != nil {
		ih.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// mustFail runs a command that must fail with want in its output.
func (ih *installHost) mustFail(want string, name string, args ...string) string {
	ih.t.Helper()
	out, err := ih.run(name, args...)
	if err == nil || !strings.Contains(out, want) {
		ih.t.Fatalf("%s %s: err %v, want output with %q:\n%s", name, strings.Join(args, " "), err, want, out)
	}
	return out
}

// assertClean checks that nothing of a cluster is left on the host.
func (ih *installHost) assertClean() {
	t := ih.t
	t.Helper()
	for _, p := range []string{"/var/lib/gravity", "/usr/lib/gravity", "/usr/local/bin/gravity", "/usr/local/bin/kubectl",
		"/usr/local/bin/helm", "/run/gravity", "/var/log/gravity", "/root/.kube", "/var/log/gravity-install.log",
		"/var/lib/cni", "/var/log/containers", "/etc/systemd/system/gravity-runtime.service"} {
		if _, err := os.Lstat(ih.h.Path(p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is left on the host (%v)", p, err)
		}
	}
	ps := ih.mustRun("ps", "-e", "-o", "pid=,comm=")
	if lines := strings.Split(strings.TrimSpace(ps), "\n"); len(lines) > 2 { // init and ps
		t.Errorf("processes left:\n%s", ps)
	}
	if links := ih.mustRun("ip", "-o", "link"); strings.Contains(links, config.BridgeName) {
		t.Errorf("pod bridge left:\n%s", links)
	}
	if rules := ih.mustRun("iptables-save"); strings.Contains(rules, "KUBE-") || strings.Contains(rules, "CNI-") {
		t.Errorf("iptables chains left:\n%s", rules)
	}
	if mounts := ih.mustRun("cat", "/proc/self/mountinfo"); strings.Contains(mounts, "/var/lib/gravity") {
		t.Errorf("mounts left:\n%s", mounts)
	}
}

// testRefused: bad input gets a clear error and changes nothing.
func testRefused(t *testing.T, ih *installHost, image string) {
	g := filepath.Join(image, "gravity")
	ih.mustFail("must run as root", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", g, "install")
	ih.mustFail("--cloud-provider=aws is not supported", g, "install", "--cloud-provider=aws")
	ih.mustFail("--pod-network-cidr=10.244.0.0/33: not an IPv4 CIDR", g, "install", "--pod-network-cidr=10.244.0.0/33")
	ih.mustFail("--advertise-addr=10.9.9.9: no interface", g, "install", "--advertise-addr=10.9.9.9")
	ih.mustFail(`unknown preflight check "nope"`, g, "install", "--skip-check=nope")
	ih.assertClean()

	// A preflight failure: something already listens on the API port.
	squatter := ih.h.Command(ih.ctx, "/bin/busybox", "nc", "-l", "-p", "6443")
	if err := squatter.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // until it listens
	report := "/root/preflight.json"
	out := ih.mustFail("preflight checks failed (ports)", g, "install", "--preflight-report", report)
	_ = squatter.Cancel()
	_ = squatter.Wait()
	t.Logf("preflight failure:\n%s", out)
	var rep struct {
		Results []struct{ Name, Status string }
	}
	if data, err := os.ReadFile(ih.h.Path(report)); err != nil || json.Unmarshal(data, &rep) != nil || len(rep.Results) == 0 {
		t.Errorf("preflight report %s: %v", report, err)
	}
	// The report is the only thing written.
	ih.assertClean()

	// A cluster image copied only two thirds of the way: tar -xf keeps what
	// it got (the gravity binary, early in the file, whole), and install
	// refuses it from the sizes alone, with exit code 3.
	cut := "/root/cut"
	tarball := ih.h.Path(image + ".tar")
	fi, err := os.Stat(tarball)
	if err != nil {
		t.Fatal(err)
	}
	ih.mustRun("sh", "-c", fmt.Sprintf("head -c %d %s.tar > %s.tar && mkdir %s", fi.Size()*2/3, image, cut, cut))
	if out, err := ih.run("tar", "-xf", cut+".tar", "-C", cut); err == nil {
		t.Fatalf("tar -xf of a cut image succeeded:\n%s", out)
	}
	out = ih.mustFail("bytes are missing", filepath.Join(cut, "gravity"), "install")
	var exit *exec.ExitError
	if _, err := ih.run(filepath.Join(cut, "gravity"), "install"); !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("install of a cut image: %v, want exit code 3\n%s", err, out)
	}
	ih.assertClean()
	// One blob damaged in place: the digest check finds it.
	damaged := "/root/damaged"
	ih.mustRun("cp", "-a", image, damaged)
	blob := largestBlob(t, ih.h.Path(damaged+"/packages/blobs/sha256"))
	data, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ih.mustFail("is damaged", filepath.Join(damaged, "gravity"), "install")
	ih.assertClean()
}

func largestBlob(t *testing.T, dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var best string
	var size int64
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Size() > size {
			best, size = filepath.Join(dir, e.Name()), fi.Size()
		}
	}
	return best
}

// testKillResume kills the installer with SIGKILL while each of three
// phases runs; `gravity plan resume` then finishes the install.
func testKillResume(t *testing.T, ih *installHost, image string) {
	ip := ih.h.IP.String()
	start := time.Now()
	ih.killDuring("/pull/"+ip, filepath.Join(image, "gravity"), "install", "--cloud-provider=generic", "--token-ttl=24h")
	// The runtime is its own process: killing the installer leaves it be.
	ih.killDuring("/masters/"+ip+"/runtime", filepath.Join(image, "gravity"), "plan", "resume")
	ih.killDuring("/runtime/dns-app", "/usr/local/bin/gravity", "plan", "resume")
	out := ih.mustRun("/usr/local/bin/gravity", "plan", "resume")
	t.Logf("install with three kills took %.1f s; last resume:\n%s", time.Since(start).Seconds(), out)
	if !strings.Contains(out, "Installation succeeded in") {
		t.Fatalf("no success line:\n%s", out)
	}
	p := ih.readPlan()
	if !p.Done() {
		t.Fatalf("plan not done: %s", ih.mustRun("gravity", "plan"))
	}
}

// killDuring starts a command and SIGKILLs it once phase is in progress.
func (ih *installHost) killDuring(phase, name string, args ...string) {
	ih.t.Helper()
	ih.killWhen(ih.phase, phase, name, args...)
}

// killWhen is killDuring with the plan's phases read by lookup.
func (ih *installHost) killWhen(lookup func(id string) (*plan.Phase, error), phase, name string, args ...string) {
	t := ih.t
	t.Helper()
	ctx, cancel := context.WithCancel(ih.ctx)
	defer cancel()
	cmd := ih.h.Command(ctx, name, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case err := <-done:
			t.Fatalf("%s ended (%v) before phase %s ran:\n%s", name, err, phase, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if ph, err := lookup(phase); err == nil && ph.State == plan.InProgress {
			break
		}
	}
	cancel() // SIGKILL, as Host.Command cancels
	<-done
	t.Logf("killed %s during %s", filepath.Base(name), phase)
}

func (ih *installHost) readPlan() *plan.Plan {
	p, err := plan.FileStore{Path: ih.h.Path(planFile)}.Load(ih.ctx)
	if err != nil {
		ih.t.Fatal(err)
	}
	return p
}

func (ih *installHost) phase(id string) (*plan.Phase, error) {
	p, err := plan.FileStore{Path: ih.h.Path(planFile)}.Load(ih.ctx)
	if err != nil {
		return nil, err
	}
	return p.Find(id)
}

// testInstalled checks the installed cluster as the walkthrough does.
func testInstalled(t *testing.T, ih *installHost, image string) {
	ip := ih.h.IP.String()
	if out := ih.mustRun("kubectl", "get", "node", ip, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`); out != "True" {
		t.Errorf("node Ready = %q", out)
	}
	ih.waitPod("alpine")
	if img := ih.mustRun("kubectl", "get", "pod", "alpine", "-o", "jsonpath={.spec.containers[0].image}"); img != "registry.local:5000/alpine:3.3" {
		t.Errorf("alpine image %q", img)
	}
	// Helm 2's table, as the walkthrough shows it.
	ls := ih.mustRun("helm", "ls")
	if !regexp.MustCompile(`(?m)^NAME +\tREVISION\tUPDATED +\tSTATUS +\tCHART +\tAPP VERSION\tNAMESPACE\n` +
		`example\t1 +\t\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\tDEPLOYED\talpine-0.0.1\t +\t\S+$`).MatchString(ls) {
		t.Errorf("helm ls is not Helm 2's table:\n%s", ls)
	}
	ih.mustFail("already has install operation", filepath.Join(image, "gravity"), "install")
	checkNoHookRights(t, ih)
	checkSecretsEncrypted(t, ih)
	checkStrayImageRefused(t, ih)
	checkRegistryAccess(t, ih)
	checkCertsRenew(t, ih)
	checkUsers(t, ih)
	checkTsh(t, ih)
	checkWebPanel(t, ih)
	// System images run pinned by digest: the sandbox image and CoreDNS.
	if cfg := ih.mustRun("cat", "/var/lib/gravity/config/containerd.toml"); !strings.Contains(cfg, "gravitational/pause:0.1.0@sha256:") {
		t.Errorf("the sandbox image is not pinned by digest")
	}
	if img := ih.mustRun("kubectl", "get", "deployment", "-n", "kube-system", "coredns", "-o", "jsonpath={..image}"); !strings.Contains(img, "@sha256:") {
		t.Errorf("CoreDNS runs %q, not pinned by digest", img)
	}
	// Component configs and logs are root's alone; registry storage too.
	modes := ih.mustRun("sh", "-c", "stat -c '%a %n' /var/lib/gravity/config/* /var/log/gravity/*.log /var/lib/gravity/registry")
	for _, line := range strings.Split(strings.TrimSpace(modes), "\n") {
		mode, name, _ := strings.Cut(line, " ")
		if want := map[bool]string{true: "700", false: "600"}[strings.HasSuffix(name, "/registry")]; mode != want {
			t.Errorf("%s has mode %s, want %s", name, mode, want)
		}
	}
	// Components run under their upstream names (the kernel keeps 15
	// characters of a process name: kube-controller-manager's is cut).
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller", "kube-scheduler", "kubelet", "kube-proxy", "containerd", "registry"} {
		if out, err := ih.run("ps", "-C", name, "-o", "pid="); err != nil || strings.TrimSpace(out) == "" {
			t.Errorf("ps -C %s finds nothing: %v\n%s", name, err, ih.mustRun("ps", "-e", "-o", "comm="))
		}
	}

	// Install copied what it needs: the unpacked image can go.
	ih.mustRun("rm", "-rf", image)
	status := ih.mustRun("gravity", "status")
	t.Logf("gravity status:\n%s", status)
	for _, want := range []string{"Cluster status:\t\tactive", "Application:\t\tcluster-image, version 0.0.1",
		"https://" + ip + ":6443", "Status:\thealthy", "Join token:"} {
		if !strings.Contains(status, want) {
			t.Errorf("gravity status lacks %q", want)
		}
	}
	if line := grepLine(status, "Join token expires:"); !strings.Contains(line, "(in 23h") && !strings.Contains(line, "(in 24h") {
		t.Errorf("gravity status: join token expiry line %q, want it about 24h away (--token-ttl=24h)", line)
	}
	token := strings.TrimSpace(ih.mustRun("gravity", "status", "--token"))
	if line := grepLine(status, "Join token:"); token == "" || strings.Fields(line)[len(strings.Fields(line))-1] != token {
		t.Errorf("gravity status --token = %q, status says %q", token, line)
	}
	var st struct {
		Cluster struct{ State string }
		Nodes   []struct{ Address, Status string }
	}
	if err := json.Unmarshal([]byte(ih.mustRun("gravity", "status", "-o", "json")), &st); err != nil ||
		st.Cluster.State != "active" || len(st.Nodes) != 1 || st.Nodes[0].Status != "healthy" {
		t.Errorf("gravity status -o json: %+v (%v)", st, err)
	}

}

// checkNoHookRights: the hooks ran (the app is installed) and nothing of
// their rights is left: no hook account or binding, and no service account
// in default or kube-system, where hooks ran, may do everything.
func checkNoHookRights(t *testing.T, ih *installHost) {
	for _, kind := range []string{"serviceaccounts", "clusterrolebindings"} {
		if out := ih.mustRun("kubectl", "get", kind, "-A", "-l", "gravitational.io/hook-account", "-o", "name"); out != "" {
			t.Errorf("hook %s left after install:\n%s", kind, out)
		}
	}
	for _, ns := range []string{"default", "kube-system"} {
		sas := strings.Fields(ih.mustRun("kubectl", "get", "serviceaccounts", "-n", ns, "-o", "jsonpath={.items[*].metadata.name}"))
		if len(sas) == 0 {
			t.Errorf("no service accounts in %s: the check proves nothing", ns)
		}
		for _, sa := range sas {
			// A pod in default runs as one of these; none may do all.
			out, _ := ih.run("kubectl", "auth", "can-i", "*", "*", "--as=system:serviceaccount:"+ns+":"+sa)
			if strings.TrimSpace(out) != "no" {
				t.Errorf("service account %s/%s can do everything: %q", ns, sa, out)
			}
		}
	}
	// can-i answers yes for an admin: the check can fail.
	if out := ih.mustRun("kubectl", "auth", "can-i", "*", "*"); strings.TrimSpace(out) != "yes" {
		t.Errorf("the admin's can-i = %q", out)
	}
}

// checkSecretsEncrypted reads Secrets straight from etcd: a new one and
// the join token are stored encrypted with the cluster's key, and the
// audit log records the Secret's creation without its data.
func checkSecretsEncrypted(t *testing.T, ih *installHost) {
	const marker = "gravity-e2e-plaintext-marker"
	ih.mustRun("kubectl", "create", "secret", "generic", "e2e-probe", "--from-literal=k="+marker)
	pki := config.DefaultStateDir + "/secrets/"
	etcdGet := func(key string) string {
		return ih.mustRun(etcdctl, "--endpoints=https://127.0.0.1:2379",
			"--cacert="+pki+"etcd/ca.crt", "--cert="+pki+"apiserver-etcd-client.crt", "--key="+pki+"apiserver-etcd-client.key",
			"get", "--print-value-only", key)
	}
	for _, key := range []string{"/registry/secrets/default/e2e-probe", "/registry/secrets/kube-system/gravity-join-token"} {
		v := etcdGet(key)
		if !strings.HasPrefix(v, "k8s:enc:secretbox:v1:key1:") || strings.Contains(v, marker) {
			t.Errorf("etcd holds %s as %.60q, want it encrypted with secretbox key1", key, v)
		}
	}
	if v := etcdGet("/registry/namespaces/default"); strings.HasPrefix(v, "k8s:enc:") {
		t.Errorf("a namespace is encrypted too: the check cannot tell")
	}
	const audit = config.DefaultLogDir + "/kube-apiserver-audit.log"
	if mode := ih.mustRun("stat", "-c", "%a", audit); mode != "600\n" {
		t.Errorf("audit log mode %q", mode)
	}
	log := ih.mustRun("cat", audit)
	if !strings.Contains(log, `"resource":"secrets","namespace":"default","name":"e2e-probe"`) || strings.Contains(log, marker) {
		t.Errorf("the audit log has no event for the Secret's creation, or has its data")
	}
	if !strings.Contains(log, `"level":"RequestResponse"`) || !strings.Contains(log, `"apiGroup":"rbac.authorization.k8s.io"`) {
		t.Errorf("the audit log has no RBAC change with its body (the hooks' bindings)")
	}
	ih.mustRun("kubectl", "delete", "secret", "e2e-probe")
}

func (ih *installHost) waitPod(name string) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, _ := ih.run("kubectl", "get", "pod", name, "-o", "jsonpath={.status.phase}")
		if out == "Running" {
			return
		}
		if time.Now().After(deadline) {
			ih.t.Fatalf("pod %s not Running: %s\n%s", name, out, ih.mustRun("kubectl", "get", "pods", "-A"))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// testHookFailure: a failing install hook's logs are shown and the plan
// stays resumable; rollback returns the host to clean; after the fix,
// resume finishes.
func testHookFailure(t *testing.T, ih *installHost, image string) {
	g := filepath.Join(image, "gravity")
	out := ih.mustFail("phase /app/failhook", g, "install")
	for _, want := range []string{"hook-fix is missing: failing on purpose", "gravity plan resume"} {
		if !strings.Contains(out, want) {
			t.Errorf("install output lacks %q:\n%s", want, out)
		}
	}
	ph, err := ih.phase("/app/failhook")
	if err != nil || ph.State != plan.Failed {
		t.Fatalf("phase /app/failhook: %+v %v", ph, err)
	}
	t.Logf("the failing hook was reported %.1f s after its phase started", ph.Finished.Sub(ph.Started).Seconds())
	rb := ih.mustRun("gravity", "plan", "rollback")
	t.Logf("rollback:\n%s", rb)
	ih.assertClean()

	// Again through the image's install script, as a user may.
	ih.mustFail("phase /app/failhook", filepath.Join(image, "install"))
	ih.mustRun("kubectl", "create", "configmap", "hook-fix", "-n", "default")
	if out := ih.mustRun("gravity", "plan", "resume"); !strings.Contains(out, "Installation succeeded") {
		t.Fatalf("resume after the fix:\n%s", out)
	}
	ih.mustRun("gravity", "leave", "--force")
	ih.assertClean()
}

// checkStrayImageRefused: a pod whose image is not in the cluster registry
// fails to pull at once, and its event says which image and why, instead
// of the pull hanging on the way out of an air-gapped cluster.
func checkStrayImageRefused(t *testing.T, ih *installHost) {
	const image = "docker.io/library/nginx:1.27"
	ih.mustRun("kubectl", "run", "stray", "--image="+image, "--restart=Never")
	defer ih.run("kubectl", "delete", "pod", "stray", "--now")
	deadline := time.Now().Add(time.Minute)
	for {
		events, _ := ih.run("kubectl", "get", "events", "--field-selector", "involvedObject.name=stray",
			"-o", "jsonpath={.items[*].message}")
		if strings.Contains(events, image) && strings.Contains(events, "no resolve hosts") {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("no event refusing %s within a minute:\n%s", image, events)
			return
		}
		time.Sleep(time.Second)
	}
}

// checkRegistryAccess: over the network, with the node's own keys, the
// registry lets containerd's certificate pull and not push, and a
// kubelet's certificate do neither; only the cluster's push path (which
// the install itself used) pushes.
func checkRegistryAccess(t *testing.T, ih *installHost) {
	secrets := ih.h.Path("/var/lib/gravity/secrets")
	caPEM, err := os.ReadFile(filepath.Join(secrets, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	as := func(pair string) *http.Client {
		cert, err := tls.LoadX509KeyPair(filepath.Join(secrets, pair+".crt"), filepath.Join(secrets, pair+".key"))
		if err != nil {
			t.Fatal(err)
		}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: "registry.local"}}}
	}
	base := "https://" + net.JoinHostPort(ih.h.IP.String(), "5000")
	for _, tc := range []struct {
		pair, method, path string
		want               int
	}{
		{"registry-client", http.MethodGet, "/v2/alpine/manifests/3.3", http.StatusOK},
		{"registry-client", http.MethodPost, "/v2/gravitational/pause/blobs/uploads/", http.StatusForbidden},
		{"registry-client", http.MethodPut, "/v2/alpine/manifests/3.3", http.StatusForbidden},
		{"kubelet-client", http.MethodGet, "/v2/alpine/manifests/3.3", http.StatusForbidden},
		{"kubelet-client", http.MethodPost, "/v2/alpine/blobs/uploads/", http.StatusForbidden},
		{"kube-proxy", http.MethodPost, "/v2/alpine/blobs/uploads/", http.StatusForbidden},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, nil)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json")
		resp, err := as(tc.pair).Do(req)
		if err != nil {
			t.Errorf("%s %s as %s: %v", tc.method, tc.path, tc.pair, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s as %s: %s, want %d", tc.method, tc.path, tc.pair, resp.Status, tc.want)
		}
	}
}

// checkCertsRenew: gravity certs renew gives the API server a new
// certificate that it then serves, while the app's pod runs on untouched
// and kubectl keeps working with root's renewed kubeconfig.
func checkCertsRenew(t *testing.T, ih *installHost) {
	if out := ih.mustRun("gravity", "certs", "ls"); !strings.Contains(out, "apiserver") || !strings.Contains(out, "kube-apiserver") {
		t.Errorf("gravity certs ls:\n%s", out)
	}
	uid := ih.mustRun("kubectl", "get", "pod", "alpine", "-o", "jsonpath={.metadata.uid}")
	served := func() *x509.Certificate {
		conn, err := tls.Dial("tcp", net.JoinHostPort(ih.h.IP.String(), "6443"), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}
	old := served()
	start := time.Now()
	out := ih.mustRun("gravity", "certs", "renew")
	t.Logf("gravity certs renew took %.1f s:\n%s", time.Since(start).Seconds(), out)
	for _, want := range []string{"Restarted kube-apiserver", "Restarted kubelet", "Restarted registry-gate"} {
		if !strings.Contains(out, want) {
			t.Errorf("renew did not say %q", want)
		}
	}
	if now := served(); now.SerialNumber.Cmp(old.SerialNumber) == 0 || !now.NotAfter.After(old.NotAfter) {
		t.Errorf("the API server still serves its old certificate (serial %v, until %v)", now.SerialNumber, now.NotAfter)
	}
	if got := ih.mustRun("kubectl", "get", "pod", "alpine", "-o", "jsonpath={.metadata.uid} {.status.containerStatuses[0].restartCount}"); got != uid+" 0" {
		t.Errorf("the app's pod after renew: %q, want the same pod (%s) never restarted", got, uid)
	}
	if st := ih.mustRun("gravity", "status"); !strings.Contains(st, "Status:\thealthy") {
		t.Errorf("gravity status after renew:\n%s", st)
	}
}

// grepLine is the first line of text containing s.
func grepLine(text, s string) string {
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}
