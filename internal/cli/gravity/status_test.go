package gravity

import (
	"strings"
	"testing"
	"time"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/pki"
)

// TestPrintClusterStatus: the text a Gravity user greps, masters and other
// nodes apart, each node with its hostname, address, profile and health.
func TestPrintClusterStatus(t *testing.T) {
	created := time.Now().Add(-time.Minute)
	st := cluster.Status{
		Info:      cluster.Info{Name: "calmlagoon1", State: "active", App: "cluster-image", AppVersion: "0.0.1"},
		Token:     "6ab6d807010e",
		Endpoints: []cluster.Endpoint{{Name: "Kubernetes API", URLs: []string{"https://10.0.0.1:6443"}}},
		Nodes: []cluster.NodeStatus{
			{Hostname: "node-1", Address: "10.0.0.1", Profile: "node", Master: true, Status: "healthy"},
			{Hostname: "node-2", Address: "10.0.0.2", Profile: "worker", Status: "degraded",
				Problems: []string{"Ready=False: kubelet stopped"}},
		},
		Operations: []cluster.OperationBrief{{ID: "op1", Type: "install", State: "completed", Created: created,
			Finished: created.Add(30 * time.Second)}},
	}
	var b strings.Builder
	if err := printClusterStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Cluster name:\t\tcalmlagoon1\n",
		"Cluster status:\t\tactive\n",
		"Application:\t\tcluster-image, version 0.0.1\n",
		"Join token:\t\t6ab6d807010e\n",
		"    * install (op1): completed\n",
		"Cluster endpoints:\n    * Kubernetes API:\n        - https://10.0.0.1:6443\n",
		"Cluster nodes:\n    Masters:\n        * node-1 / 10.0.0.1 / node\n            Status:\thealthy\n",
		"    Nodes:\n        * node-2 / 10.0.0.2 / worker\n            Status:\tdegraded\n            [×]\tReady=False: kubelet stopped\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}

// TestPrintTokenExpiry: the expiry has a line of its own, and the token
// stays the last field of its line, as scripts cut it.
func TestPrintTokenExpiry(t *testing.T) {
	for _, tc := range []struct {
		expires time.Time
		want    string
	}{
		{time.Time{}, ""},
		{time.Now().Add(25 * time.Hour), "(in 25h"},
		{time.Now().Add(-time.Minute), "(expired)"},
	} {
		var b strings.Builder
		st := cluster.Status{Token: "6ab6d807010e", TokenExpires: tc.expires}
		if err := printClusterStatus(&b, st); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		var tokenLine, expiryLine string
		for _, line := range strings.Split(out, "\n") {
			switch {
			case strings.HasPrefix(line, "Join token:"):
				tokenLine = line
			case strings.HasPrefix(line, "Join token expires:"):
				expiryLine = line
			}
		}
		if f := strings.Fields(tokenLine); len(f) == 0 || f[len(f)-1] != "6ab6d807010e" {
			t.Errorf("token line %q", tokenLine)
		}
		if (tc.want == "") != (expiryLine == "") || !strings.Contains(expiryLine, tc.want) {
			t.Errorf("expiry line %q, want %q", expiryLine, tc.want)
		}
	}
}

// TestPrintExpiring: certificates due within the window are named with
// when they expire and how to renew; none, no section.
func TestPrintExpiring(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	var b strings.Builder
	printExpiring(&b, nil, now)
	if b.Len() != 0 {
		t.Errorf("printed %q with nothing expiring", b.String())
	}
	printExpiring(&b, []pki.Expiry{
		{Name: "kubelet", Subject: "system:node:10.0.0.1", NotAfter: now.Add(-time.Hour)},
		{Name: "apiserver", Subject: "kube-apiserver", NotAfter: now.Add(12 * 24 * time.Hour)},
		{Name: "kubeconfig/admin.conf", Subject: "admin", NotAfter: now.Add(90 * time.Minute)},
	}, now)
	out := b.String()
	for _, want := range []string{
		"Certificates:\n",
		"[!] kubelet (system:node:10.0.0.1) has expired",
		"[!] apiserver (kube-apiserver) expires in 12 days, on ",
		"[!] kubeconfig/admin.conf (admin) expires in 1h30m0s",
		"gravity certs renew",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
}
