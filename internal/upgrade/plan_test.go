package upgrade

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/clusterimage"
	"github.com/opengravity/gravity/internal/kube/kubefake"
	"github.com/opengravity/gravity/internal/plan"
)

func TestPlan(t *testing.T) {
	base := Spec{OperationID: "op", ClusterName: "c", App: "cluster-image", From: "0.0.1", To: "0.0.2",
		FromPackage: "gravitational.io/cluster-image:0.0.1", ToPackage: "gravitational.io/cluster-image:0.0.2",
		Node: "10.0.0.2", Nodes: []Node{{"10.0.0.1", "10.0.0.1", true}, {"10.0.0.2", "10.0.0.2", true}, {"10.0.0.3", "10.0.0.3", false}},
		Gravity: "sha256:abc", Releases: map[string]int{"kube-system/example": 1}, Created: time.Unix(0, 0)}
	// The driver's binary first, then the others in the order given.
	binaries := []string{"/gravity/10.0.0.2:update-binaries", "/gravity/10.0.0.1:update-binaries", "/gravity/10.0.0.3:update-binaries"}
	tests := []struct {
		name   string
		hooks  []string
		leaves []string // id:type
	}{
		{"update hook", []string{"update"}, append([]string{"/checks:update-checks", "/app/cluster-image:update-app"}, binaries...)},
		{"every hook", []string{"postUpdate", "update", "preUpdate", "install"}, append([]string{"/checks:update-checks", "/app/cluster-image:update-app"}, binaries...)},
		// Nothing to run for the app: no app phase, not an empty one.
		{"no update hooks", []string{"install"}, append([]string{"/checks:update-checks"}, binaries...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base
			s.Hooks = tt.hooks
			p := Plan(s)
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ph := range p.Leaves() {
				got = append(got, ph.ID+":"+ph.Type)
			}
			if strings.Join(got, " ") != strings.Join(tt.leaves, " ") {
				t.Errorf("leaves %v, want %v", got, tt.leaves)
			}
			if p.OperationType != OperationType || p.State() != plan.Unstarted {
				t.Errorf("type %s, state %s", p.OperationType, p.State())
			}
			if r := releases(p); r["kube-system/example"] != "1" || len(r) != 1 {
				t.Errorf("releases %v", r)
			}
			if p.Data[dataFrom] != "0.0.1" || p.Data[dataTo] != "0.0.2" || p.Data[dataForce] != "" || p.Data[dataDriver] != "10.0.0.2" {
				t.Errorf("data %v", p.Data)
			}
			for _, ph := range p.Leaves() {
				if ph.Type == typeBinaries && (ph.Data[dataAddr] != ph.Node || ph.Data[dataDigest] != "sha256:abc") {
					t.Errorf("%s: data %v", ph.ID, ph.Data)
				}
			}
		})
	}
	// A driver missing from the node list is still planned.
	s := base
	s.Nodes = nil
	if l := Plan(s).Leaves(); l[len(l)-1].ID != "/gravity/10.0.0.2" {
		t.Errorf("driver not planned: %v", l[len(l)-1].ID)
	}
	// Phase descriptions name what runs: the hooks, in order.
	s = base
	s.Hooks = []string{"postUpdate", "update"}
	if d := Plan(s).Leaves()[1].Description; !strings.Contains(d, "(update, postUpdate hooks)") {
		t.Errorf("app phase: %q", d)
	}
}

// TestPlanRuntime: a new runtime is put beside the old one on every node,
// etcd is snapshotted, then each master and each worker in turn is
// drained, switched with the new gravity and uncordoned, before the app's
// hooks; the other masters get the app's packages too.
func TestPlanRuntime(t *testing.T) {
	app := Package{Ref: "gravitational.io/cluster-image:0.0.2"}
	rt := Package{Ref: RuntimeRef("0.1.1")}
	s := Spec{OperationID: "op", ClusterName: "c", App: "cluster-image", From: "0.0.1", To: "0.0.2",
		Node: "m2", Nodes: []Node{{"m1", "10.0.0.1", true}, {"m2", "10.0.0.2", true}, {"w1", "10.0.0.4", false}},
		Gravity: "sha256:abc", Version: "0.1.1", OldVersion: "0.1.0", FromRuntime: "0.1.0", ToRuntime: "0.1.1",
		Pause: "registry.local:5000/gravitational/pause:0.1.1@sha256:p", MasterPackages: []Package{app}, RuntimePackage: rt,
		Hooks: []string{"update"}, Created: time.Unix(0, 0)}
	p := Plan(s)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ph := range p.Leaves() {
		got = append(got, ph.ID+":"+ph.Type)
	}
	want := []string{"/checks:update-checks",
		"/bootstrap/m2:update-bootstrap", "/bootstrap/m1:update-bootstrap", "/bootstrap/w1:update-bootstrap",
		"/etcd-backup:update-etcd-backup",
		"/masters/m2/drain:update-drain", "/masters/m2/system-upgrade:update-system", "/masters/m2/uncordon:update-uncordon",
		"/masters/m1/drain:update-drain", "/masters/m1/system-upgrade:update-system", "/masters/m1/uncordon:update-uncordon",
		"/nodes/w1/drain:update-drain", "/nodes/w1/system-upgrade:update-system", "/nodes/w1/uncordon:update-uncordon",
		"/app/cluster-image:update-app"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("leaves\n%v\nwant\n%v", got, want)
	}
	refs := func(id string) string {
		ph, err := p.Find(id)
		if err != nil {
			t.Fatal(err)
		}
		pkgs, err := decodePackages(ph.Data[dataPackages])
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, pk := range pkgs {
			out = append(out, pk.Ref)
		}
		return strings.Join(out, ",") + " runtime=" + ph.Data[dataRuntime]
	}
	for id, want := range map[string]string{
		"/bootstrap/m2": " runtime=0.1.1", // the driver's store has them all
		"/bootstrap/m1": app.Ref + "," + rt.Ref + " runtime=0.1.1",
		"/bootstrap/w1": rt.Ref + " runtime=0.1.1",
	} {
		if got := refs(id); got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
	}
	sys, _ := p.Find("/nodes/w1/system-upgrade")
	if sys.Data[dataAddr] != "10.0.0.4" || sys.Data[dataRuntime] != "0.1.1" || sys.Data[dataOldRuntime] != "0.1.0" ||
		sys.Data[dataVersion] != "0.1.1" || sys.Data[dataOldVersion] != "0.1.0" || sys.Data[dataPause] != s.Pause || sys.Data[dataDigest] != "sha256:abc" {
		t.Errorf("system upgrade data: %v", sys.Data)
	}
	if p.Data[dataFromRuntime] != "0.1.0" || p.Data[dataToRuntime] != "0.1.1" || !strings.Contains(p.Description, "runtime from 0.1.0 to 0.1.1") {
		t.Errorf("plan: %v %q", p.Data, p.Description)
	}

	// A new CoreDNS: a system application phase after the runtime, before
	// the app.
	s.CoreDNS, s.OldCoreDNS = "registry.local:5000/gravitational/coredns:1.16.0@sha256:n", "registry.local:5000/gravitational/coredns:1.15.0@sha256:o"
	leaves := Plan(s).Leaves()
	if dns := leaves[len(leaves)-2]; dns.ID != "/coredns" || dns.Type != typeCoreDNS || dns.Data[dataImage] != s.CoreDNS || dns.Data[dataOldImage] != s.OldCoreDNS {
		t.Errorf("CoreDNS phase: %+v", dns)
	}
	s.CoreDNS = s.OldCoreDNS
	if leaves := Plan(s).Leaves(); leaves[len(leaves)-2].ID == "/coredns" {
		t.Error("a CoreDNS phase for the image the cluster runs")
	}

	// One node: nowhere to drain to, so no drain; nothing to send.
	s.Nodes = []Node{{"m2", "10.0.0.2", true}}
	got = nil
	for _, ph := range Plan(s).Leaves() {
		got = append(got, ph.ID)
	}
	if strings.Join(got, " ") != "/checks /bootstrap/m2 /etcd-backup /masters/m2/system-upgrade /app/cluster-image" {
		t.Errorf("single node: %v", got)
	}
	// The same runtime: the other masters get the app's packages, and the
	// gravity binaries are a phase of their own.
	s.Nodes = []Node{{"m1", "10.0.0.1", true}, {"m2", "10.0.0.2", true}, {"w1", "10.0.0.4", false}}
	s.ToRuntime = s.FromRuntime
	got = nil
	for _, ph := range Plan(s).Leaves() {
		got = append(got, ph.ID)
	}
	if strings.Join(got, " ") != "/checks /bootstrap/m1 /app/cluster-image /gravity/m2 /gravity/m1 /gravity/w1" {
		t.Errorf("same runtime: %v", got)
	}
}

func TestCheckVersions(t *testing.T) {
	info := cluster.Info{App: "cluster-image", AppVersion: "0.0.2"}
	tests := []struct {
		name, version string
		err           string
	}{
		{"newer", "0.0.3", ""},
		{"newer minor", "0.1.0", ""},
		{"prerelease of the next", "0.0.3-rc.1", ""},
		{"same", "0.0.2", "already runs cluster-image 0.0.2"},
		{"older", "0.0.1", "downgrades are not supported"},
		{"other app", "0.0.3", "application other"},
		{"bad version", "v1", `image's version "v1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			meta := &clusterimage.Meta{Name: "cluster-image", Version: tt.version}
			if tt.name == "other app" {
				meta.Name = "other"
			}
			err := checkVersions(info, meta)
			if (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("error %v, want %q", err, tt.err)
			}
		})
	}
}

// Helm's release records: the newest deployed revision of each release;
// superseded revisions and other Secrets do not count.
func TestDeployedReleases(t *testing.T) {
	secret := func(ns, name string, labels map[string]string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
	}
	kc, _ := kubefake.NewClient(
		secret("kube-system", "sh.helm.release.v1.example.v1", map[string]string{"owner": "helm", "name": "example", "status": "superseded", "version": "1"}),
		secret("kube-system", "sh.helm.release.v1.example.v2", map[string]string{"owner": "helm", "name": "example", "status": "deployed", "version": "2"}),
		secret("default", "sh.helm.release.v1.web.v7", map[string]string{"owner": "helm", "name": "web", "status": "deployed", "version": "7"}),
		secret("default", "sh.helm.release.v1.bad.v1", map[string]string{"owner": "helm", "name": "bad", "status": "deployed", "version": "x"}),
		secret("default", "token", map[string]string{"status": "deployed", "version": "3"}),
	)
	got, err := deployedReleases(context.Background(), cluster.Clients{Kube: kc})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"kube-system/example": 2, "default/web": 7}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestBinaries: the new gravity replaces the old only when it is the one
// the plan names, the old one is kept once, and the rollback puts it back.
func TestBinaries(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dst := write("gravity", "old")
	good, bad := write("good", "new"), write("bad", "tampered")
	digest, err := fileDigest(good)
	if err != nil {
		t.Fatal(err)
	}
	read := func() string {
		b, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	backup := filepath.Join(dir, "update", "op", "gravity")
	ctx := context.Background()
	if err := (binaries{src: bad, dst: dst, backup: backup, digest: digest}).Execute(ctx); err == nil || !strings.Contains(err.Error(), "not the upgrade's") {
		t.Fatalf("tampered binary: %v", err)
	}
	if err := (binaries{src: "", dst: dst, backup: backup, digest: digest}).Execute(ctx); err == nil {
		t.Fatal("no binary accepted")
	}
	if read() != "old" {
		t.Fatal("a refused binary replaced the old one")
	}
	b := binaries{src: good, dst: dst, backup: backup, digest: digest}
	for range 2 { // idempotent: the backup is the original, not the new one
		if err := b.Execute(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if read() != "new" {
		t.Fatal("not replaced")
	}
	if err := b.Rollback(ctx); err != nil || read() != "old" {
		t.Fatalf("rollback: %v, %q", err, read())
	}
}
