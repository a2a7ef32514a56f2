//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/version"
)

// testUpgrade is the walkthrough's "Upgrading The Cluster" on the installed
// node: refusals first (nothing changes), then ./upgrade from v2, checked
// with gravity status, helm ls, the pod's image and the binary that nodes
// joining later copy.
func testUpgrade(t *testing.T, ih *installHost, v2, v3delta string) {
	ip := ih.h.IP.String()
	// A delta against v2, which the cluster does not have yet: refused,
	// listing what it lacks, and nothing imported.
	out := ih.mustFail("the cluster lacks what it leaves out", filepath.Join(v3delta, "upgrade"))
	if !strings.Contains(out, "delta against cluster-image:0.0.2") || !strings.Contains(out, "sha256:") {
		t.Errorf("the refused delta does not name its base and the missing blobs:\n%s", out)
	}

	// Not uploaded yet: refused before anything is recorded.
	ih.mustFail("was it uploaded? run ./upload", filepath.Join(v2, "gravity"), "upgrade")
	if plan := ih.mustRun("gravity", "plan"); strings.Contains(plan, "(update)") {
		t.Errorf("a refused upgrade left an operation:\n%s", plan)
	}

	before, err := os.ReadFile(ih.h.Path("/usr/local/bin/gravity"))
	if err != nil {
		t.Fatal(err)
	}
	// By hand first: upload, plan only, one phase, then a resume killed
	// (-9) while the update hook runs, resumed again.
	out = ih.mustRun(filepath.Join(v2, "upload"))
	for _, want := range []string{"Importing application cluster-image v0.0.2",
		"Synchronizing application with Docker registry " + ip + ":5000", "Application has been uploaded"} {
		if !strings.Contains(out, want) {
			t.Errorf("./upload output lacks %q:\n%s", want, out)
		}
	}
	if out := ih.mustRun(filepath.Join(v2, "gravity"), "upgrade", "--manual"); !strings.Contains(out, "created in manual mode") {
		t.Errorf("upgrade --manual:\n%s", out)
	}
	if st := ih.mustRun("gravity", "status"); !strings.Contains(st, "Cluster status:\t\tupdating") || !strings.Contains(st, "Upgrade application cluster-image from 0.0.1 to 0.0.2") {
		t.Errorf("gravity status during the upgrade:\n%s", st)
	}
	ih.mustRun("gravity", "plan", "execute", "--phase", "/checks")
	ih.killWhen(ih.clusterPhase, "/app/cluster-image", "gravity", "plan", "resume")
	if out := ih.mustRun("gravity", "plan", "resume"); !strings.Contains(out, "has completed: the cluster runs cluster-image 0.0.2") {
		t.Errorf("resume after kill -9:\n%s", out)
	}
	checkUpgraded(t, ih, v2, 2, false)

	// A completed upgrade rolled back, then the walkthrough's ./upgrade.
	out = ih.mustRun("gravity", "upgrade", "--rollback-last")
	t.Logf("upgrade --rollback-last:\n%s", out)
	if st := ih.mustRun("gravity", "status"); !strings.Contains(st, "cluster-image, version 0.0.1") || !strings.Contains(st, "Cluster status:\t\tactive") {
		t.Errorf("gravity status after --rollback-last:\n%s", st)
	}
	if ls := ih.mustRun("helm", "ls"); !regexp.MustCompile(`(?m)^example\t3 +\t.*\tDEPLOYED\talpine-0.0.1\t`).MatchString(ls) {
		t.Errorf("helm ls after --rollback-last:\n%s", ls)
	}
	ih.waitImage("registry.local:5000/alpine:3.3", false)
	if after, err := os.ReadFile(ih.h.Path("/usr/local/bin/gravity")); err != nil || !bytes.Equal(before, after) {
		t.Errorf("--rollback-last did not put the old gravity back (%v)", err)
	}

	start := time.Now()
	out = ih.mustRun(filepath.Join(v2, "upgrade"))
	t.Logf("./upgrade (%v):\n%s", time.Since(start).Round(time.Millisecond), out)
	for _, want := range []string{"Importing application cluster-image v0.0.2",
		"Synchronizing application with Docker registry " + ip + ":5000", "Application has been uploaded",
		"Upgrading application cluster-image from 0.0.1 to 0.0.2", "Upgrade to 0.0.2 completed in"} {
		if !strings.Contains(out, want) {
			t.Errorf("./upgrade output lacks %q", want)
		}
	}
	checkUpgraded(t, ih, v2, 4, true)
	ih.mustFail("the cluster already runs cluster-image 0.0.2", filepath.Join(v2, "upgrade"))

	// Helm 2's command line still works on the upgraded release.
	if hist := ih.mustRun("helm", "history", "example"); !strings.Contains(hist, "alpine-0.0.2") || !strings.Contains(hist, "alpine-0.0.1") {
		t.Errorf("helm history:\n%s", hist)
	}
	ih.put(filepath.Join(repo, "examples/gravity101/v1/charts/alpine"), "/root/alpine-v1")
	ih.mustFail(`a release named "example" already exists`, "helm", "install", "/root/alpine-v1", "--name", "example", "--namespace", "kube-system")
}

// checkUpgraded: the cluster runs v2 as the walkthrough shows it.
//
// The pod's container is replaced in place when its image changes, which
// takes its 30 s grace period (the chart's sleep ignores SIGTERM): running
// says whether to wait for the new image to run, or only check the spec.
func checkUpgraded(t *testing.T, ih *installHost, v2 string, revision int, running bool) {
	t.Helper()
	if st := ih.mustRun("gravity", "status"); !strings.Contains(st, "cluster-image, version 0.0.2") || !strings.Contains(st, "Cluster status:\t\tactive") {
		t.Errorf("gravity status after the upgrade:\n%s", st)
	}
	var st struct {
		Operations []struct{ Type, State string }
	}
	if err := json.Unmarshal([]byte(ih.mustRun("gravity", "status", "-o", "json")), &st); err != nil ||
		len(st.Operations) == 0 || st.Operations[0].Type != "update" || st.Operations[0].State != "completed" {
		t.Errorf("newest operation: %+v (%v)", st.Operations, err)
	}
	if plan := ih.mustRun("gravity", "plan"); !strings.Contains(plan, "(update)") || !strings.Contains(plan, "/app/cluster-image") {
		t.Errorf("gravity plan does not show the upgrade:\n%s", plan)
	}
	ls := ih.mustRun("helm", "ls")
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^example\t%d +\t.*\tDEPLOYED\talpine-0.0.2\t`, revision)).MatchString(ls) {
		t.Errorf("helm ls after the upgrade:\n%s", ls)
	}
	ih.waitImage("registry.local:5000/alpine:3.4", running)
	// Nodes that join later copy this node's gravity: the new one.
	got, err := os.ReadFile(ih.h.Path("/usr/local/bin/gravity"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(ih.h.Path(filepath.Join(v2, "gravity")))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("/usr/local/bin/gravity is not the new image's")
	}
}

// waitImage waits for the alpine pod to have image: in its spec, or, when
// running, in its ready container.
func (ih *installHost) waitImage(image string, running bool) {
	ih.t.Helper()
	path, want := "{.spec.containers[0].image}", image
	if running {
		path, want = "{.status.containerStatuses[0].image} {.status.containerStatuses[0].ready}", image+" true"
	}
	ih.waitFor("the pod on "+image, func() bool {
		out, err := ih.run("kubectl", "get", "pod", "alpine", "-o", "jsonpath="+path)
		return err == nil && out == want
	})
}

// waitFor polls ok for up to two minutes.
func (ih *installHost) waitFor(what string, ok func() bool) {
	ih.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			ih.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// testUpgradeRollback: a version on the next runtime whose update hook
// upgrades the release and then fails (a delta image against v2, which the
// cluster now has): the node is switched to the new runtime before the
// hook runs. Its log is shown, the cluster stays updating, and `gravity
// plan rollback` returns the release to its revision from before (the app
// has no rollback hook), the node to its old runtime and gravity, and the
// cluster to 0.0.2.
func testUpgradeRollback(t *testing.T, ih *installHost, v3, fixed string) {
	before, err := os.ReadFile(ih.h.Path("/usr/local/bin/gravity"))
	if err != nil {
		t.Fatal(err)
	}
	out := ih.mustFail("phase /app/cluster-image failed", filepath.Join(v3, "upgrade"))
	t.Logf("./upgrade of the failing version:\n%s", out)
	for _, want := range []string{"update: the new version does not start", "gravity plan rollback"} {
		if !strings.Contains(out, want) {
			t.Errorf("./upgrade output lacks %q", want)
		}
	}
	if st := ih.mustRun("gravity", "status"); !strings.Contains(st, "Cluster status:\t\tupdating") {
		t.Errorf("gravity status after the failed upgrade:\n%s", st)
	}
	if ls := ih.mustRun("helm", "ls"); !strings.Contains(ls, "alpine-0.0.3") {
		t.Errorf("the failing hook did not upgrade the release first:\n%s", ls)
	}
	ih.mustFail("upgrade operation", filepath.Join(v3, "gravity"), "upgrade")

	rb := ih.mustRun("gravity", "plan", "rollback")
	t.Logf("rollback:\n%s", rb)
	for _, want := range []string{"rolling back release example", "to revision 4", "has been rolled back: the cluster runs cluster-image 0.0.2"} {
		if !strings.Contains(rb, want) {
			t.Errorf("rollback output lacks %q", want)
		}
	}
	if st := ih.mustRun("gravity", "status"); !strings.Contains(st, "cluster-image, version 0.0.2") || !strings.Contains(st, "Cluster status:\t\tactive") {
		t.Errorf("gravity status after the rollback:\n%s", st)
	}
	ls := ih.mustRun("helm", "ls")
	if !regexp.MustCompile(`(?m)^example\t6 +\t.*\tDEPLOYED\talpine-0.0.2\t`).MatchString(ls) {
		t.Errorf("helm ls after the rollback:\n%s", ls)
	}
	ih.waitImage("registry.local:5000/alpine:3.4", false)
	// The pod the failed version added went with its release revision.
	ih.waitFor("alpine-next deleted", func() bool {
		out, err := ih.run("kubectl", "get", "pod", "alpine-next", "-o", "jsonpath={.metadata.deletionTimestamp}")
		return err != nil || out != ""
	})
	if after, err := os.ReadFile(ih.h.Path("/usr/local/bin/gravity")); err != nil || !bytes.Equal(before, after) {
		t.Errorf("/usr/local/bin/gravity is not the old one after the rollback (%v)", err)
	}
	// The failing version is on the next runtime: the node was switched to
	// it before the hook failed, and is back on the old one.
	p := ih.clusterPlan()
	if ph, err := p.Find("/masters/" + ih.h.IP.String() + "/system-upgrade"); err != nil || ph.State != plan.RolledBack {
		t.Errorf("the runtime switch: %+v, %v", ph, err)
	}
	var st struct{ BinDir, Version, State string }
	if err := json.Unmarshal([]byte(ih.mustRun("cat", "/run/gravity/runtime-status.json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.BinDir != config.VersionBinDir(version.Version) || st.Version != version.Version || st.State != "running" {
		t.Errorf("runtime after the rollback: %+v", st)
	}
	if _, err := ih.run("test", "-e", filepath.Dir(config.VersionBinDir("0.1.1"))); err == nil {
		t.Errorf("the failing version's runtime is left after the rollback")
	}

	// The fixed image upgrades: the same runtime switch, its update hook
	// passing this time.
	out = ih.mustRun(filepath.Join(fixed, "upgrade"))
	t.Logf("./upgrade of the fixed version:\n%s", out)
	if st := ih.mustRun("gravity", "status"); !strings.Contains(st, "cluster-image, version 0.0.4") || !strings.Contains(st, "Cluster status:\t\tactive") {
		t.Errorf("gravity status after the fixed upgrade:\n%s", st)
	}
	if err := json.Unmarshal([]byte(ih.mustRun("cat", "/run/gravity/runtime-status.json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.BinDir != config.VersionBinDir("0.1.1") || st.Version != "0.1.1" || st.State != "running" {
		t.Errorf("runtime after the fixed upgrade: %+v", st)
	}
	if ls := ih.mustRun("helm", "ls"); !regexp.MustCompile(`(?m)^example\t7 +\t.*\tDEPLOYED\talpine-0.0.4\t`).MatchString(ls) {
		t.Errorf("helm ls after the fixed upgrade:\n%s", ls)
	}
}

// fixedApp is the failing update's app with its update hook fixed, as
// version 0.0.4: a copy under dir, so that the repository keeps one tree.
func fixedApp(t *testing.T, dir string) string {
	t.Helper()
	src, dst := filepath.Join(repo, "test/e2e/testdata/failupdate"), filepath.Join(dir, "fixupdate-app")
	if err := os.RemoveAll(dst); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	edit := func(name, old, new string) {
		t.Helper()
		path := filepath.Join(dst, name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), old) {
			t.Fatalf("%s has no %q to change", name, old)
		}
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(data), old, new)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	edit("app.yaml", "resourceVersion: 0.0.3", "resourceVersion: 0.0.4")
	edit("charts/alpine/Chart.yaml", "version: 0.0.3", "version: 0.0.4")
	edit("update.yaml", ` &&
              echo "update: the new version does not start" && exit 1`, "")
	return dst
}

// clusterPhase finds phase id in the cluster's newest operation, as
// `gravity plan` on the node shows it.
func (ih *installHost) clusterPhase(id string) (*plan.Phase, error) {
	out, err := ih.run("gravity", "plan", "-o", "json")
	if err != nil {
		return nil, err
	}
	var p plan.Plan
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		return nil, err
	}
	return p.Find(id)
}

// clusterPlan is the plan `gravity plan -o json` shows on the node.
func (ih *installHost) clusterPlan() *plan.Plan {
	var p plan.Plan
	if err := json.Unmarshal([]byte(ih.mustRun("gravity", "plan", "-o", "json")), &p); err != nil {
		ih.t.Fatal(err)
	}
	return &p
}
