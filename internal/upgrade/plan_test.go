package upgrade

import (
	"context"
	"maps"
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
		Node: "10.0.0.1", Releases: map[string]int{"kube-system/example": 1}, Created: time.Unix(0, 0)}
	tests := []struct {
		name   string
		hooks  []string
		leaves []string // id:type
	}{
		{"update hook", []string{"update"}, []string{"/checks:update-checks", "/app/cluster-image:update-app", "/gravity/10.0.0.1:update-binaries"}},
		{"every hook", []string{"postUpdate", "update", "preUpdate", "install"}, []string{"/checks:update-checks", "/app/cluster-image:update-app", "/gravity/10.0.0.1:update-binaries"}},
		// Nothing to run for the app: no app phase, not an empty one.
		{"no update hooks", []string{"install"}, []string{"/checks:update-checks", "/gravity/10.0.0.1:update-binaries"}},
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
			if p.Data[dataFrom] != "0.0.1" || p.Data[dataTo] != "0.0.2" || p.Data[dataForce] != "" {
				t.Errorf("data %v", p.Data)
			}
		})
	}
	// Phase descriptions name what runs: the hooks, in order.
	s := base
	s.Hooks = []string{"postUpdate", "update"}
	if d := Plan(s).Leaves()[1].Description; !strings.Contains(d, "(update, postUpdate hooks)") {
		t.Errorf("app phase: %q", d)
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
