package pki

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestExpiries: a node's certificate files and kubeconfigs, issued with
// short lifetimes, are listed soonest first, and Expiring picks those due
// within the window, by a clock, not by waiting.
func TestExpiries(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cs, err := NewCASet("c", 24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "pki")
	if err := cs.Save(dir, false); err != nil {
		t.Fatal(err)
	}
	n := Node{Name: "10.0.0.1", IP: net.ParseIP("10.0.0.1"), Master: true, ServiceIP: net.ParseIP("10.100.0.1"),
		Validity: time.Hour, Now: now}
	certs, err := NodeCerts(cs, n)
	if err != nil {
		t.Fatal(err)
	}
	// One certificate expires sooner than the rest.
	short := n
	short.Validity = 10 * time.Minute
	shortCerts, err := NodeCerts(cs, short)
	if err != nil {
		t.Fatal(err)
	}
	certs[APIServer] = shortCerts[APIServer]
	if err := WriteDir(dir, certs); err != nil {
		t.Fatal(err)
	}
	kc, err := Kubeconfig("https://10.0.0.1:6443", cs.Cluster.Cert, certs[Admin], "admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(filepath.Join(dir, "kubeconfig", "admin.conf"), kc, KeyMode, false); err != nil {
		t.Fatal(err)
	}
	es, err := Expiries(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != len(certs)+3+1 { // node certificates, 3 CAs, the kubeconfig
		t.Fatalf("%d certificates listed: %+v", len(es), es)
	}
	if es[0].Name != APIServer || !es[0].NotAfter.Equal(now.Add(10*time.Minute)) {
		t.Errorf("soonest %+v, want the apiserver's in 10 minutes", es[0])
	}
	found := false
	for _, e := range es {
		found = found || e.Name == "kubeconfig/admin.conf" && e.Subject == "admin"
	}
	if !found {
		t.Error("the kubeconfig's certificate is not listed")
	}
	for _, tc := range []struct {
		at     time.Duration
		within time.Duration
		want   int
	}{
		{0, 5 * time.Minute, 0},
		{0, 11 * time.Minute, 1},
		{30 * time.Minute, 0, 1},             // expired
		{0, 2 * time.Hour, len(certs) + 1},   // every node certificate and the kubeconfig, not the CAs
		{0, RenewWithin, len(certs) + 3 + 1}, // the CAs too
	} {
		if got := Expiring(es, now.Add(tc.at), tc.within); len(got) != tc.want {
			t.Errorf("at +%v within %v: %d expiring, want %d", tc.at, tc.within, len(got), tc.want)
		}
	}
}
