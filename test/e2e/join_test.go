//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// testJoinWorker grows the installed cluster by a worker, as the walkthrough's
// "Expanding Cluster" does: only the gravity binary is copied to the new
// host, which joins with the token from gravity status. A wrong token is
// refused with nothing changed; a join killed (-9) is rolled back to
// nothing, and another killed twice resumes; the worker runs a pod from
// registry.local; it holds no CA key; it leaves gracefully (the cluster
// forgets it) and can join again.
func testJoinWorker(t *testing.T, ih *installHost) {
	w := ih.addHost("h2")
	w.t = t
	h2 := w.h
	master, ip := ih.h.IP.String(), h2.IP.String()
	w.put(ih.h.Path("/usr/local/bin/gravity"), "/root/gravity")
	token := strings.TrimSpace(ih.mustRun("gravity", "status", "--token"))

	// Refused: a wrong token (the CA is not trusted, nothing is sent),
	// a peer with no cluster service. Nothing changes on the host.
	w.mustFail("invalid token", "/root/gravity", "join", master, "--token=not-the-token-1", "--master=false")
	w.mustFail("could not reach a cluster service", "/root/gravity", "join", ip, "--token="+token, "--master=false")
	if _, err := os.Stat(h2.Path("/var/lib/gravity")); !os.IsNotExist(err) {
		t.Fatalf("a refused join left /var/lib/gravity (%v)", err)
	}

	joinArgs := []string{"join", master, "--token=" + token, "--master=false"}
	join := func(wants ...string) {
		start := time.Now()
		out := w.mustRun("/root/gravity", joinArgs...)
		t.Logf("gravity join (%v):\n%s", time.Since(start).Round(time.Millisecond), out)
		for _, want := range append(wants, "Connected to existing cluster at "+master+":3009", "Joined cluster in") {
			if !strings.Contains(out, want) {
				t.Errorf("gravity join output lacks %q", want)
			}
		}
	}

	// kill -9 while it pulls: the master shows the operation; a rollback
	// leaves the cluster and the host as they were.
	w.killDuring("/pull/"+ip, "/root/gravity", joinArgs...)
	status := ih.mustRun("gravity", "status")
	for _, want := range []string{"Cluster status:\t\texpanding", "Join node h2 (" + ip + ") as node", "Progress:"} {
		if !strings.Contains(status, want) {
			t.Errorf("gravity status during the join lacks %q:\n%s", want, status)
		}
	}
	if plan := ih.mustRun("gravity", "plan"); !strings.Contains(plan, "/pull/"+ip) {
		t.Errorf("gravity plan on the master does not show the join:\n%s", plan)
	}
	t.Logf("rollback:\n%s", w.mustRun("/root/gravity", "plan", "rollback"))
	rolledBack := func(how string) {
		t.Helper()
		if out, err := ih.run("kubectl", "get", "node", ip); err == nil {
			t.Errorf("node %s is in the cluster after the join was %s:\n%s", ip, how, out)
		}
		if cm := ih.mustRun("kubectl", "-n", "kube-system", "get", "configmap", "gravity-pod-subnets", "-o", "jsonpath={.data}"); strings.Contains(cm, ip) {
			t.Errorf("the join %s kept its pod subnet: %s", how, cm)
		}
		if status := ih.mustRun("gravity", "status"); !strings.Contains(status, "Cluster status:\t\tactive") {
			t.Errorf("cluster not active after the join was %s:\n%s", how, status)
		}
	}
	rolledBack("rolled back")
	w.assertClean()

	// The joining host dies half way, its runtime started: nothing there
	// will resume or undo the join, which holds the cluster expanding. The
	// master rolls it back; without --force it says how.
	w.killDuring("/system/"+ip, "/root/gravity", joinArgs...)
	_, _ = w.run("kill", "-9", "-1")
	ih.mustFail("is still joining", "gravity", "remove", ip, "--confirm")
	out := ih.mustRun("gravity", "remove", ip, "--force", "--confirm")
	t.Logf("gravity remove of the dead joining host:\n%s", out)
	if !strings.Contains(out, "The join of node h2 ("+ip+") has been rolled back") {
		t.Errorf("gravity remove of a joining node did not say the join was rolled back")
	}
	rolledBack("abandoned")
	w.mustRun("/root/gravity", "leave", "--force")
	w.assertClean()

	// kill -9 in two more phases; running gravity join again resumes. Both
	// phases last seconds (a package download, the runtime's start), so
	// polling the plan catches them in progress; waiting for Ready may
	// take a moment only, too short to be caught reliably.
	w.killDuring("/pull/"+ip, "/root/gravity", joinArgs...)
	w.killDuring("/system/"+ip, "/root/gravity", joinArgs...)
	join("Resuming operation")
	if out := ih.mustRun("kubectl", "get", "node", ip, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`); out != "True" {
		t.Errorf("node %s Ready = %q", ip, out)
	}
	// A pod on the worker, its image pulled through registry.local.
	pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"on-worker"},"spec":{"nodeName":"` + ip + `",` +
		`"containers":[{"name":"c","image":"registry.local:5000/alpine:3.3","command":["sleep","3600"]}]}}`
	w.put(writeTemp(t, pod), "/root/pod.json")
	ih.put(writeTemp(t, pod), "/root/pod.json")
	ih.mustRun("kubectl", "apply", "-f", "/root/pod.json")
	ih.waitPod("on-worker")

	var st struct {
		Cluster    struct{ State string }
		Nodes      []struct{ Address, Status, Profile string }
		Operations []struct{ Type, State string }
	}
	if err := json.Unmarshal([]byte(ih.mustRun("gravity", "status", "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Cluster.State != "active" || len(st.Nodes) != 2 {
		t.Errorf("gravity status after the join: %+v", st)
	}
	if len(st.Operations) == 0 || st.Operations[0].Type != "expand" || st.Operations[0].State != "completed" {
		t.Errorf("newest operation: %+v", st.Operations)
	}
	// The worker got certificates for its own keys and no CA key.
	if _, err := os.Stat(h2.Path("/var/lib/gravity/secrets/ca.key")); !os.IsNotExist(err) {
		t.Errorf("the worker holds the cluster CA key (%v)", err)
	}
	if _, err := os.Stat(h2.Path("/var/lib/gravity/local/join.json")); !os.IsNotExist(err) {
		t.Errorf("the finished join left its record, with the token (%v)", err)
	}
	plan := w.mustRun("gravity", "plan")
	t.Logf("gravity plan on the worker:\n%s", plan)
	if !strings.Contains(plan, "(expand)") || !strings.Contains(plan, "/wait/"+ip) {
		t.Errorf("gravity plan on the worker lacks the join's phases")
	}

	// The worker renews its certificates through the cluster service and
	// stays Ready on them.
	before := w.mustRun("cat", "/var/lib/gravity/secrets/kubelet.crt")
	out = w.mustRun("gravity", "certs", "renew")
	t.Logf("gravity certs renew on the worker:\n%s", out)
	if !strings.Contains(out, "Renewed the certificates of "+ip) || !strings.Contains(out, "Restarted kubelet") {
		t.Errorf("renew on the worker did not renew and restart")
	}
	if w.mustRun("cat", "/var/lib/gravity/secrets/kubelet.crt") == before {
		t.Errorf("the worker's kubelet serving certificate was not replaced")
	}
	waitUntil(t, "the worker Ready on its new certificates", time.Minute, func() bool {
		out, _ := ih.run("kubectl", "get", "node", ip, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		return out == "True"
	})

	// Leaving: drained and forgotten by the cluster, clean here.
	w.mustRun("gravity", "leave")
	if out, err := ih.run("kubectl", "get", "node", ip); err == nil {
		t.Errorf("node %s is still in the cluster after it left:\n%s", ip, out)
	}
	w.assertClean()
	// ... and it may join again.
	join("Connecting to cluster", "Pull the runtime package")
	w.mustRun("gravity", "leave")
	w.assertClean()
	ih.run("kubectl", "delete", "pod", "on-worker", "--wait=false")
}

func writeTemp(t testing.TB, data string) string {
	f, err := os.CreateTemp(t.TempDir(), "obj-*.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return f.Name()
}
