package node

import (
	"slices"
	"testing"

	"github.com/opengravity/gravity/internal/mountinfo"
)

func TestWithoutNodeRules(t *testing.T) {
	saved := `*nat
:PREROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:CNI-abc - [0:0]
:MINE - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -s 10.244.0.0/24 -j CNI-abc
-A PREROUTING -j MINE
-A KUBE-SERVICES -j RETURN
COMMIT
`
	want := `*nat
:PREROUTING ACCEPT [0:0]
:MINE - [0:0]
-A PREROUTING -j MINE
COMMIT
`
	got, changed := withoutNodeRules(saved)
	if !changed || got != want {
		t.Fatalf("changed %v, got:\n%s", changed, got)
	}
	if _, changed := withoutNodeRules(want); changed {
		t.Fatal("a table without node rules changed")
	}
}

func TestMountsUnder(t *testing.T) {
	entries := []mountinfo.Entry{{Point: "/"}, {Point: "/var/lib/gravity/kubelet"},
		{Point: "/var/lib/gravity/kubelet/pods/x/volumes/token"}, {Point: "/var/lib/gravity-other"},
		{Point: "/run/netns/cni-1"}, {Point: "/var/lib/gravity/kubelet"}}
	got := mountsUnder(entries, []string{"/var/lib/gravity", "/run/netns"})
	want := []string{"/var/lib/gravity/kubelet/pods/x/volumes/token", "/var/lib/gravity/kubelet", "/run/netns/cni-1"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestInCgroup(t *testing.T) {
	for _, tc := range []struct {
		text string
		want bool
	}{
		{"12:memory:/gravity-n1/kubepods/pod1\n0::/", true},
		{"12:memory:/gravity-n1\n", true},
		{"12:memory:/gravity-n10/kubepods\n", false},
		{"0::/user.slice\n", false},
	} {
		if got := inCgroup(tc.text, "/gravity-n1"); got != tc.want {
			t.Errorf("%q: got %v", tc.text, got)
		}
	}
}
