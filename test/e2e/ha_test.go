//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opengravity/gravity/internal/nodeagent"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/version"
)

// haCluster is the multi-node cluster the HA scenarios share: installed
// once on h1, grown by joins.
type haCluster struct {
	*installHost
	hosts map[string]*installHost
	token string
}

func (c *haCluster) host(t testing.TB, name string) *installHost {
	if h, ok := c.hosts[name]; ok {
		return h
	}
	ih := c.addHost(name)
	ih.put(c.h.Path("/usr/local/bin/gravity"), "/root/gravity")
	c.hosts[name] = ih
	return ih
}

// join runs the walkthrough's join on host name and returns its output.
func (c *haCluster) join(t testing.TB, name string, args ...string) string {
	h := c.host(t, name)
	start := time.Now()
	out := h.mustRun("/root/gravity", append([]string{"join", c.h.IP.String(), "--token=" + c.token}, args...)...)
	t.Logf("%s: gravity join %s (%v):\n%s", name, strings.Join(args, " "), time.Since(start).Round(time.Millisecond), out)
	if !strings.Contains(out, "Joined cluster in") {
		t.Fatalf("%s: no success line", name)
	}
	return out
}

// TestHA: install on h1; h2 and h3 join as masters with only the gravity
// binary, as the walkthrough does.
func TestHA(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	ih := newInstallHost(t, ctx, "gha", "10.236.0.0/24")
	v1 := ih.unpack("v1", ih.buildImage(filepath.Join(repo, "examples/gravity101/v1"), "v1"))
	start := time.Now()
	ih.mustRun(filepath.Join(v1, "gravity"), "install", "--cloud-provider=generic")
	t.Logf("install took %v", time.Since(start).Round(time.Millisecond))
	c := &haCluster{installHost: ih, hosts: map[string]*installHost{},
		token: strings.TrimSpace(ih.mustRun("gravity", "status", "--token"))}

	t.Run("masters", func(t *testing.T) { testMastersJoin(t, c) })
	t.Run("workers", func(t *testing.T) { testWorkersJoin(t, c) })
	t.Run("upgrade", func(t *testing.T) { testUpgradeNodes(t, c) })
	t.Run("master-down", func(t *testing.T) { testMasterDown(t, c) })
	t.Run("remove", func(t *testing.T) { testRemove(t, c) })
	if drops, err := c.net.EgressDrops(ctx); err != nil || drops != 0 {
		t.Errorf("packets dropped leaving the test hosts: %d (%v)", drops, err)
	}
}

// waitUntil polls ok until it holds or d passes, and returns how long it
// took.
func waitUntil(t testing.TB, what string, d time.Duration, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(250 * time.Millisecond)
	}
	return time.Since(start)
}

// testMasterDown: every process on h1 is killed. The API answers on h2 and
// through a worker's balancer, a new Deployment's pods start elsewhere and
// pull from registry.local, gravity status on h2 shows h1 degraded; h1's
// runtime starts again and it is Ready with nothing lost.
func testMasterDown(t *testing.T, c *haCluster) {
	h1, h2, h4 := c.h.IP.String(), c.hosts["h2"], c.hosts["h4"]
	// A join that h1 admitted is killed half way, then h1 goes down.
	h6 := c.host(t, "h6")
	joinArgs := []string{"join", h1, "--token=" + c.token}
	h6.killDuring("/pull/"+h6.h.IP.String(), "/root/gravity", joinArgs...)
	// A build box logged in through h1 keeps reaching nodes through
	// another master's proxy once h1 is down.
	c.put(writeTemp(t, "kind: user\nversion: v2\nmetadata: {name: ops}\nspec: {type: admin, roles: [\"@teleadmin\"], password: ops-password-123}\n"), "/root/ops.yaml")
	c.mustRun("gravity", "resource", "create", "/root/ops.yaml")
	box := newBuildBox(t)
	box.mustRun("ops-password-123\n", "tsh", "--insecure", "login", "--proxy="+h1+":32009", "--user=ops")
	_, _ = c.run("kill", "-9", "-1")
	down := time.Now()
	took := waitUntil(t, "kubectl get nodes on h2", 30*time.Second, func() bool {
		_, err := h2.run("kubectl", "get", "nodes")
		return err == nil
	})
	t.Logf("API on h2 answered %v after h1 went down", took.Round(time.Millisecond))
	took = waitUntil(t, "the API through a worker's balancer", 30*time.Second, func() bool {
		_, err := h4.run("kubectl", "--kubeconfig=/var/lib/gravity/secrets/kubeconfig/kubelet.conf", "get", "node", h4.h.IP.String())
		return err == nil
	})
	t.Logf("API from worker h4 answered %v after h1 went down", took.Round(time.Millisecond))
	// The users and tokens made through h1 are served by h2.
	if users := h2.mustRun("gravity", "resource", "get", "users"); !strings.Contains(users, "agent@example.com") {
		t.Errorf("gravity resource get users on h2, h1 down:\n%s", users)
	}
	if out := h2.mustRun("curl", "-sSf", "--cacert", "/var/lib/gravity/secrets/ca.crt", "-H", "Authorization: Bearer qwe123",
		"https://"+h2.h.IP.String()+":3009/v1/whoami"); !strings.Contains(out, `"user":"agent@example.com"`) {
		t.Errorf("the API token on h2, h1 down: %s", out)
	}
	if ls := box.mustRun("", "tsh", "ls"); !strings.Contains(ls, h4.h.IP.String()+":3022") {
		t.Errorf("tsh ls with h1 down:\n%s", ls)
	}
	if out := box.mustRun("", "tsh", "ssh", "root@"+h4.h.IP.String(), "hostname"); strings.TrimSpace(out) == "" {
		t.Errorf("tsh ssh to h4 through h2's proxy printed nothing")
	}
	status := h2.mustRun("gravity", "status")
	if line := grepLine(status[strings.Index(status, "/ "+h1+" /"):], "Status:"); !strings.Contains(line, "degraded") {
		t.Errorf("gravity status on h2 does not show h1 degraded:\n%s", status)
	}
	deploy := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"after-h1"},"spec":{"replicas":2,` +
		`"selector":{"matchLabels":{"app":"after-h1"}},"template":{"metadata":{"labels":{"app":"after-h1"}},"spec":{` +
		`"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":` +
		`[{"key":"kubernetes.io/hostname","operator":"NotIn","values":["` + h1 + `"]}]}]}}},` +
		`"containers":[{"name":"c","image":"registry.local:5000/alpine:3.3","command":["sleep","3600"]}]}}}}`
	h2.put(writeTemp(t, deploy), "/root/deploy.json")
	h2.mustRun("kubectl", "apply", "-f", "/root/deploy.json")
	took = waitUntil(t, "the Deployment's pods", 2*time.Minute, func() bool {
		out, _ := h2.run("kubectl", "get", "deployment", "after-h1", "-o", "jsonpath={.status.availableReplicas}")
		return out == "2"
	})
	t.Logf("a new Deployment was available %v later (%v after h1 went down)", took.Round(time.Millisecond), time.Since(down).Round(time.Second))

	// The killed join, run again: it goes on with another master. Once
	// Kubernetes too sees h1 down, so that the join's hook Jobs are not
	// scheduled there.
	waitUntil(t, "h1 NotReady", 2*time.Minute, func() bool {
		out, _ := h2.run("kubectl", "get", "node", h1, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		return out != "True" && out != ""
	})
	start := time.Now()
	out := h6.mustRun("/root/gravity", joinArgs...)
	t.Logf("h6: gravity join again, h1 down (%v):\n%s", time.Since(start).Round(time.Millisecond), out)
	if !strings.Contains(out, "Joined cluster in") || strings.Contains(out, "Connected to existing cluster at "+h1) {
		t.Errorf("h6's join did not go on with another master")
	}

	// h1 comes back.
	c.mustRun("gravity", "runtime", "start", "--config", "/var/lib/gravity/config/node.yaml")
	took = waitUntil(t, "h1 Ready again", 3*time.Minute, func() bool {
		out, _ := h2.run("kubectl", "get", "node", h1, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		st, _ := h2.run("gravity", "status")
		return out == "True" && !strings.Contains(st, "degraded")
	})
	t.Logf("h1 was Ready and healthy %v after its runtime started again", took.Round(time.Millisecond))
	if out := c.mustRun("kubectl", "get", "pod", "on-h3", "-o", "jsonpath={.status.phase}"); out != "Running" {
		t.Errorf("pod on-h3 after h1 came back: %q", out)
	}
}

// testRemove: a worker and a master are removed from h2; etcd is back to
// two healthy members; the removed master, cleaned, joins again.
func testRemove(t *testing.T, c *haCluster) {
	h2, h3, h5 := c.hosts["h2"], c.hosts["h3"], c.hosts["h5"]
	out := h2.mustRun("gravity", "remove", h5.h.IP.String(), "--confirm")
	t.Logf("gravity remove h5:\n%s", out)
	h5.mustRun("gravity", "leave", "--force")
	h5.assertClean()
	h2.mustFail("not confirmed", "sh", "-c", "echo n | gravity remove h3")
	out = h2.mustRun("gravity", "remove", "h3", "--confirm")
	t.Logf("gravity remove h3:\n%s", out)
	// Its API server is out of the kubernetes service before the removal
	// ends (a pod sent there would have its token refused), not when its
	// lease runs out.
	if eps := h2.mustRun("kubectl", "get", "endpointslices", "-n", "default", "-l", "kubernetes.io/service-name=kubernetes",
		"-o", "jsonpath={.items[*].endpoints[*].addresses}"); strings.Contains(eps, h3.h.IP.String()+`"`) {
		t.Errorf("the kubernetes service still lists the removed master: %s", eps)
	}
	if got := h2.mustRun("kubectl", "get", "nodes", "-o", "name"); strings.Contains(got, h3.h.IP.String()) || strings.Contains(got, h5.h.IP.String()) {
		t.Errorf("removed nodes still listed:\n%s", got)
	}
	members := h2.mustRun(etcdctl, "--endpoints=https://127.0.0.1:2379", "--cacert=/var/lib/gravity/secrets/etcd/ca.crt",
		"--cert=/var/lib/gravity/secrets/apiserver-etcd-client.crt", "--key=/var/lib/gravity/secrets/apiserver-etcd-client.key",
		"endpoint", "health", "--cluster")
	if n := strings.Count(members, "is healthy"); n != 2 || strings.Contains(members, "unhealthy") {
		t.Errorf("etcd after removing a master:\n%s", members)
	}
	// The removed master's API server stops renewing its lease, drops out
	// of the kubernetes EndpointSlices (15 s), and the worker's balancer
	// closes its connections to it; its pod network agent sees the change.
	removed := time.Now()
	deadline := removed.Add(90 * time.Second)
	for {
		hosts, _ := c.hosts["h4"].run("cat", registryHosts)
		if hosts != "" && !strings.Contains(hosts, h3.h.IP.String()+":5000") {
			break
		}
		if time.Now().After(deadline) {
			nodes, _ := h2.run("kubectl", "get", "nodes", "--show-labels")
			log, _ := c.hosts["h4"].run("tail", "-20", "/var/log/gravity/pod-network.log")
			t.Fatalf("a worker's registry endpoints still list the removed master:\n%s\nnodes:\n%s\npod-network on h4:\n%s", hosts, nodes, log)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("a worker's registry endpoints dropped the removed master after %v", time.Since(removed).Round(time.Second))
	h3.mustRun("gravity", "leave", "--force")
	h3.assertClean()
	// The cluster runs the upgraded gravity now: the walkthrough's copy of
	// it from a master (the old one is refused, naming why).
	if out, err := h3.run("/root/gravity", "join", c.h.IP.String(), "--token="+c.token); err == nil ||
		!strings.Contains(out, "copy /usr/local/bin/gravity from a master") {
		t.Errorf("a join with the old gravity: %v\n%s", err, out)
	}
	h3.put(c.h.Path("/usr/local/bin/gravity"), "/root/gravity")
	out = c.join(t, "h3")
	if !strings.Contains(out, "Run the application's preNodeAdd hook for node "+h3.h.IP.String()) ||
		!strings.Contains(out, "postNodeAdd ran for "+h3.h.IP.String()) {
		t.Errorf("the re-join did not show its node hooks")
	}
	// The upgraded version's node hooks ran from the cluster, each once,
	// for the node it was about.
	cms := h2.mustRun("kubectl", "get", "configmaps", "-n", "default", "-o", "name")
	h6 := c.hosts["h6"].h.IP.String()
	for _, want := range []string{"preNodeAdd-" + h6, "postNodeAdd-" + h6,
		"preNodeRemove-" + h5.h.IP.String(), "postNodeRemove-" + h5.h.IP.String(),
		"preNodeRemove-" + h3.h.IP.String(), "postNodeRemove-" + h3.h.IP.String(),
		"preNodeAdd-" + h3.h.IP.String(), "postNodeAdd-" + h3.h.IP.String()} {
		name := "configmap/node-hook-" + strings.NewReplacer(".", "-").Replace(strings.ToLower(want))
		if !strings.Contains(cms, name+"\n") {
			t.Errorf("no %s: the hook did not run\n%s", name, cms)
		}
	}
	if n := strings.Count(cms, "configmap/node-hook-"); n != 8 {
		t.Errorf("%d node hook runs, want 8:\n%s", n, cms)
	}
}

// registryHosts is containerd's list of registry.local's endpoints.
const registryHosts = "/var/lib/gravity/containerd/certs.d/registry.local:5000/hosts.toml"

// testMastersJoin: h2 and h3 join as masters (the cluster picks the role),
// one after the other: three masters, three etcd members, registry.local
// on each with every image, a pod on h3 from registry.local, status and
// kubectl on h2.
func testMastersJoin(t *testing.T, c *haCluster) {
	for _, h := range []string{"h2", "h3"} {
		out := c.join(t, h)
		if !strings.Contains(out, "as master node") {
			t.Errorf("%s did not join as a master", h)
		}
	}
	h2 := c.hosts["h2"]
	nodes := h2.mustRun("kubectl", "get", "nodes")
	t.Logf("kubectl get nodes on h2:\n%s", nodes)
	for _, h := range []*installHost{c.installHost, h2, c.hosts["h3"]} {
		ip := h.h.IP.String()
		if got := h2.mustRun("kubectl", "get", "node", ip, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`); got != "True" {
			t.Errorf("node %s Ready = %q", ip, got)
		}
		// Every master's registry has every image.
		if cat := h.mustRun("sh", "-c", "curl -sf --cacert /var/lib/gravity/secrets/ca.crt --cert /var/lib/gravity/secrets/registry-client.crt "+
			"--key /var/lib/gravity/secrets/registry-client.key --resolve registry.local:5000:"+ip+" https://registry.local:5000/v2/_catalog"); !strings.Contains(cat, "alpine") {
			t.Errorf("registry on %s: %s", ip, cat)
		}
	}
	// The seed's agent user, made through h1 (testMasterDown reads it
	// from h2 with h1 down).
	c.put(filepath.Join(repo, "examples/gravity101/agent.yaml"), "/root/agent.yaml")
	c.mustRun("gravity", "resource", "create", "/root/agent.yaml")
	// Master 1 installed alone; its containerd now pulls from every master.
	waitUntil(t, "h1's registry endpoints to list the new masters", 30*time.Second, func() bool {
		hosts, _ := c.run("cat", registryHosts)
		return strings.Contains(hosts, h2.h.IP.String()+":5000") && strings.Contains(hosts, c.hosts["h3"].h.IP.String()+":5000")
	})
	members := h2.mustRun(etcdctl, "--endpoints=https://127.0.0.1:2379", "--cacert=/var/lib/gravity/secrets/etcd/ca.crt",
		"--cert=/var/lib/gravity/secrets/apiserver-etcd-client.crt", "--key=/var/lib/gravity/secrets/apiserver-etcd-client.key",
		"endpoint", "health", "--cluster")
	t.Logf("etcd:\n%s", members)
	if n := strings.Count(members, "is healthy"); n != 3 {
		t.Errorf("%d healthy etcd members, want 3", n)
	}
	h3 := c.hosts["h3"].h.IP.String()
	pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"on-h3"},"spec":{"nodeName":"` + h3 + `",` +
		`"containers":[{"name":"c","image":"registry.local:5000/alpine:3.3","command":["sleep","3600"]}]}}`
	h2.put(writeTemp(t, pod), "/root/pod.json")
	h2.mustRun("kubectl", "apply", "-f", "/root/pod.json")
	h2.waitPod("on-h3")
	status := h2.mustRun("gravity", "status")
	t.Logf("gravity status on h2:\n%s", status)
	for _, h := range []string{c.h.IP.String(), c.hosts["h2"].h.IP.String(), h3} {
		if !strings.Contains(status, h) {
			t.Errorf("gravity status on h2 does not list %s", h)
		}
	}
}

// testWorkersJoin: with three masters, two hosts join at the same time and
// become workers.
func testWorkersJoin(t *testing.T, c *haCluster) {
	hosts := []string{"h4", "h5"}
	for _, h := range hosts {
		c.host(t, h)
	}
	errs := make(chan error, len(hosts))
	outs := make([]string, len(hosts))
	for i, h := range hosts {
		go func() {
			var err error
			outs[i], err = c.hosts[h].run("/root/gravity", "join", c.h.IP.String(), "--token="+c.token)
			errs <- err
		}()
	}
	for range hosts {
		if err := <-errs; err != nil {
			t.Errorf("parallel join: %v", err)
		}
	}
	for i, h := range hosts {
		t.Logf("%s: gravity join:\n%s", h, outs[i])
		if !strings.Contains(outs[i], "Joined cluster in") || !strings.Contains(outs[i], "as node "+h) {
			t.Errorf("%s did not join as a worker", h)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// A worker reaches the API through its balancer, with its kubelet's
	// credentials (which read its own Node only).
	h4 := c.hosts["h4"]
	if out := h4.mustRun("kubectl", "--kubeconfig=/var/lib/gravity/secrets/kubeconfig/kubelet.conf", "get", "node", h4.h.IP.String()); !strings.Contains(out, "Ready") {
		t.Errorf("kubectl get node on a worker:\n%s", out)
	}
	if out := c.mustRun("kubectl", "get", "nodes"); strings.Count(out, " Ready ") != 5 {
		t.Errorf("kubectl get nodes:\n%s", out)
	}
}

// etcdctl is the runtime's, in its version's directory.
var etcdctl = config.VersionBinDir(version.Version) + "/etcdctl"

// testUpgradeNodes: ./upgrade on h1 of the five-node cluster to v2, whose
// base image is the next runtime version: every node, masters first, one
// at a time, is drained, switched to the new runtime and the new gravity
// (the others through their agents) and restarted, while a Deployment
// behind a Service with a PodDisruptionBudget is queried throughout. A
// node's agent runs nothing for anyone else. Then the completed upgrade is
// rolled back (every node back on the old runtime) and made again. v2 has
// node hooks, which the removals and the join after it run.
func testUpgradeNodes(t *testing.T, c *haCluster) {
	v2 := c.unpack("v2", c.buildImage(filepath.Join(repo, "test/e2e/testdata/nodehooks"), "v2"))
	hosts := []*installHost{c.installHost}
	for _, name := range []string{"h2", "h3", "h4", "h5"} {
		hosts = append(hosts, c.hosts[name])
	}
	const next = "0.1.1"
	oldBin, newBin := config.VersionBinDir(version.Version), config.VersionBinDir(next)
	// runtimeOf is the runtime a host's daemon runs, from its status.
	runtimeOf := func(h *installHost) (binDir, ver, state string) {
		var st struct{ BinDir, Version, State string }
		if err := json.Unmarshal([]byte(h.mustRun("cat", "/run/gravity/runtime-status.json")), &st); err != nil {
			t.Fatal(err)
		}
		return st.BinDir, st.Version, st.State
	}
	load := startLoad(t, c, hosts[:3], c.hosts["h4"], c.hosts["h4"], c.hosts["h5"])
	start := time.Now()
	out := c.mustRun(filepath.Join(v2, "upgrade"))
	t.Logf("./upgrade on five nodes, runtime %s to %s (%v):\n%s", version.Version, next, time.Since(start).Round(time.Millisecond), out)
	if !strings.Contains(out, "Upgrade to 0.0.2 completed in") {
		t.Fatalf("./upgrade did not complete")
	}
	load(true)
	want := strings.Fields(c.mustRun("sha256sum", filepath.Join(v2, "gravity")))[0]
	p := c.clusterPlan()
	t.Logf("plan:\n%s", c.mustRun("gravity", "plan"))
	for i, h := range hosts {
		ip := h.h.IP.String()
		if got := strings.Fields(h.mustRun("sha256sum", "/usr/local/bin/gravity"))[0]; got != want {
			t.Errorf("%s: gravity %s, want the new one %s", ip, got, want)
		}
		if bin, ver, state := runtimeOf(h); bin != newBin || ver != next || state != "running" {
			t.Errorf("%s: runtime %s, gravity %s, %s; want %s, %s, running", ip, bin, ver, state, newBin, next)
		}
		// root's kubectl is the new runtime's, not the one kept for a rollback.
		if got := strings.TrimSpace(h.mustRun("readlink", "/usr/local/bin/kubectl")); got != filepath.Join(newBin, "kubectl") {
			t.Errorf("%s: /usr/local/bin/kubectl -> %s, want %s", ip, got, filepath.Join(newBin, "kubectl"))
		}
		group := "/masters/"
		if i >= 3 {
			group = "/nodes/"
		}
		if ph, err := p.Find(group + ip + "/system-upgrade"); err != nil || ph.State != plan.Completed {
			t.Errorf("phase %s%s/system-upgrade: %+v, %v", group, ip, ph, err)
		}
		if h != c.installHost {
			// The agent logged who asked it for what.
			log := h.mustRun("cat", "/var/log/gravity/agent.log")
			if !strings.Contains(log, "phase done") || !strings.Contains(log, "caller=agent-client:"+c.h.IP.String()) {
				t.Errorf("%s: agent log:\n%s", ip, log)
			}
		}
	}
	if out := c.mustRun("kubectl", "get", "nodes"); strings.Count(out, " Ready ") != 5 || strings.Contains(out, "SchedulingDisabled") {
		t.Errorf("kubectl get nodes after the upgrade:\n%s", out)
	}

	// Reversible across nodes: the completed upgrade rolled back puts every
	// node's old runtime and gravity back through the same agents; then
	// forward again.
	start = time.Now()
	out = c.mustRun("gravity", "upgrade", "--rollback-last")
	t.Logf("upgrade --rollback-last on five nodes (%v):\n%s", time.Since(start).Round(time.Millisecond), out)
	if st := c.mustRun("gravity", "status"); !strings.Contains(st, "cluster-image, version 0.0.1") {
		t.Errorf("gravity status after --rollback-last:\n%s", st)
	}
	for _, h := range hosts {
		if bin, ver, state := runtimeOf(h); bin != oldBin || ver != version.Version || state != "running" {
			t.Errorf("%s after --rollback-last: runtime %s, gravity %s, %s", h.h.IP, bin, ver, state)
		}
		if _, err := h.run("test", "-e", filepath.Dir(newBin)); err == nil {
			t.Errorf("%s: %s left after --rollback-last", h.h.IP, filepath.Dir(newBin))
		}
		if h != c.installHost {
			if log := h.mustRun("cat", "/var/log/gravity/agent.log"); !strings.Contains(log, "rollback=true") {
				t.Errorf("%s: the agent ran no rollback:\n%s", h.h.IP, log)
			}
		}
	}
	// Forward again, by hand, with the process driving it killed (-9)
	// while master h2's agent switches it and while worker h4 drains;
	// resumed, it completes.
	gravity2 := filepath.Join(v2, "gravity")
	c.mustRun(gravity2, "upgrade", "--manual")
	c.killWhen(c.clusterPhase, "/masters/"+c.hosts["h2"].h.IP.String()+"/system-upgrade", gravity2, "plan", "resume")
	c.killWhen(c.clusterPhase, "/nodes/"+c.hosts["h4"].h.IP.String()+"/drain", gravity2, "plan", "resume")
	out = c.mustRun(gravity2, "plan", "resume")
	if !strings.Contains(out, "has completed: the cluster runs cluster-image 0.0.2") {
		t.Fatalf("resume after two kills:\n%s", out)
	}
	p = c.clusterPlan()
	for _, h := range hosts {
		if bin, _, _ := runtimeOf(h); bin != newBin {
			t.Errorf("%s after the second upgrade: runtime %s", h.h.IP, bin)
		}
	}

	// Only a master's agent-client identity has an agent run anything, and
	// only phases the cluster's record has for that node, in progress.
	h4, h5 := c.hosts["h4"], c.hosts["h5"]
	as := func(h *installHost, pair string) *nodeagent.Client {
		secrets := h.h.Path("/var/lib/gravity/secrets")
		cfg, err := pki.ClientTLS(filepath.Join(secrets, pair+".crt"), filepath.Join(secrets, pair+".key"), filepath.Join(secrets, "ca.crt"))
		if err != nil {
			t.Fatal(err)
		}
		return nodeagent.NewClient(cfg)
	}
	ctx := c.ctx
	h5ip := h5.h.IP.String()
	for _, tc := range []struct {
		name   string
		client *nodeagent.Client
		op, ph string
		want   string
	}{
		{"a worker's own identity", as(h4, "kubelet-client"), p.OperationID, "/nodes/" + h5ip + "/system-upgrade", "may not run phases on nodes"},
		{"a master's, for a completed phase", as(c.installHost, "agent-client"), p.OperationID, "/nodes/" + h5ip + "/system-upgrade", "is completed"},
		{"a master's, for another node's phase", as(c.installHost, "agent-client"), p.OperationID, "/nodes/" + h4.h.IP.String() + "/system-upgrade", "not on this one"},
		{"a master's, for no operation", as(c.installHost, "agent-client"), "no-such-operation", "/x", "the cluster has no operation"},
	} {
		err := tc.client.Run(ctx, h5ip, tc.op, tc.ph, false, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
