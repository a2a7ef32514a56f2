package node

import (
	"testing"

	"github.com/opengravity/gravity/internal/mountinfo"
)

func TestSharePlan(t *testing.T) {
	root := mountinfo.Entry{Point: "/"}
	sharedRoot := mountinfo.Entry{Point: "/", Shared: true}
	varMount := mountinfo.Entry{Point: "/var"}
	kubelet := mountinfo.Entry{Point: "/var/lib/gravity/kubelet"}
	sharedKubelet := mountinfo.Entry{Point: "/var/lib/gravity/kubelet", Shared: true}
	tests := []struct {
		name        string
		entries     []mountinfo.Entry
		bind, share bool
	}{
		{"shared root (systemd)", []mountinfo.Entry{sharedRoot}, false, false},
		{"private root", []mountinfo.Entry{root}, true, true},
		{"private /var under a shared root", []mountinfo.Entry{sharedRoot, varMount}, true, true},
		{"already bound, private", []mountinfo.Entry{root, kubelet}, false, true},
		{"already bound and shared", []mountinfo.Entry{root, kubelet, sharedKubelet}, false, false},
		{"a sibling's name is not a parent", []mountinfo.Entry{root, {Point: "/var/lib/gravity/kube", Shared: true}}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bind, share := sharePlan(tt.entries, "/var/lib/gravity/kubelet/")
			if bind != tt.bind || share != tt.share {
				t.Errorf("sharePlan = bind %v, share %v; want %v, %v", bind, share, tt.bind, tt.share)
			}
		})
	}
}
