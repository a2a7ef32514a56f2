package pki

import (
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// A joining worker's keys stay with it: the cluster signs its requests with
// the subjects it decides, and a request for more than the node needs, for
// another key, or tampered with is refused.
func TestSignNodeRequests(t *testing.T) {
	cs, err := NewCASet("c", DefaultCAValidity, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	worker := Node{Name: "10.0.0.7", IP: net.ParseIP("10.0.0.7"), Hostname: "node-2"}
	names, err := NodeCertNames(worker)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{KubeletClient, KubeletServer, KubeProxy, RegistryClient, Agent}; !slices.Equal(names, want) {
		t.Fatalf("names %v, want %v", names, want)
	}
	pk, err := NewNodeRequests(names)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := SignNodeRequests(cs, worker, pk.CSRs)
	if err != nil {
		t.Fatal(err)
	}
	pairs, err := pk.Complete(certs)
	if err != nil {
		t.Fatal(err)
	}
	kubelet := pairs[KubeletClient].Cert
	if kubelet.Subject.CommonName != "system:node:10.0.0.7" || !slices.Equal(kubelet.Subject.Organization, []string{SystemNodes}) {
		t.Fatalf("kubelet client subject %v", kubelet.Subject)
	}
	if err := cs.Cluster.Verify(kubelet, UsageClient, time.Now()); err != nil {
		t.Fatal(err)
	}
	if ips := pairs[KubeletServer].Cert.IPAddresses; len(ips) != 1 || !ips[0].Equal(worker.IP) {
		t.Fatalf("kubelet serving IPs %v", ips)
	}

	for _, tc := range []struct {
		name string
		csrs func() map[string][]byte
		want string
	}{
		{"missing", func() map[string][]byte {
			m := clone(pk.CSRs)
			delete(m, KubeProxy)
			return m
		}, "no certificate request for kube-proxy"},
		{"more than a worker needs", func() map[string][]byte {
			m := clone(pk.CSRs)
			m[Admin] = pk.CSRs[KubeProxy]
			return m
		}, "does not need were asked for: [admin]"},
		{"tampered", func() map[string][]byte {
			m := clone(pk.CSRs)
			b := []byte(strings.Replace(string(m[KubeProxy]), "A", "B", 3))
			m[KubeProxy] = b
			return m
		}, "kube-proxy"},
		{"not PEM", func() map[string][]byte {
			m := clone(pk.CSRs)
			m[KubeProxy] = []byte("hello")
			return m
		}, "no PEM certificate request"},
	} {
		if _, err := SignNodeRequests(cs, worker, tc.csrs()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}

	// A certificate for another key is refused by the node.
	other, _ := NewNodeRequests(names)
	certs2, err := SignNodeRequests(cs, worker, other.CSRs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pk.Complete(certs2); err == nil || !strings.Contains(err.Error(), "not for the key made for it") {
		t.Fatalf("err = %v", err)
	}
	delete(certs, KubeProxy)
	if _, err := pk.Complete(certs); err == nil || !strings.Contains(err.Error(), "no certificate came back for kube-proxy") {
		t.Fatalf("err = %v", err)
	}
}

func clone(m map[string][]byte) map[string][]byte { return maps.Clone(m) }

// The CA set a master hands a joining master is checked whole before
// anything of it is written.
func TestCAFilesRoundTrip(t *testing.T) {
	cs, err := NewCASet("c", DefaultCAValidity, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	if err := cs.Save(src, false); err != nil {
		t.Fatal(err)
	}
	files, err := ReadFiles(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := WriteFiles(t.TempDir(), files)
	if err != nil || !got.Cluster.Cert.Equal(cs.Cluster.Cert) {
		t.Fatalf("round trip: %v", err)
	}
	for name, edit := range map[string]func(map[string][]byte){
		"missing":     func(m map[string][]byte) { delete(m, "sa.key") },
		"swapped key": func(m map[string][]byte) { m["ca.key"] = m["front-proxy-ca.key"] },
		"extra":       func(m map[string][]byte) { m["../evil"] = []byte("x") },
	} {
		m := clone(files)
		edit(m)
		dir := t.TempDir()
		if _, err := WriteFiles(dir, m); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%s: wrote %d files before refusing", name, len(ents))
		}
	}
}
