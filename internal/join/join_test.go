package join

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opengravity/gravity/internal/clusterservice"
)

func TestCheckSkew(t *testing.T) {
	for _, tc := range []struct {
		skew time.Duration
		skip []string
		want string
	}{
		{skew: 0},
		{skew: 29 * time.Second},
		{skew: -30 * time.Second},
		{skew: 2 * time.Minute, want: "this host's clock is 2m0s behind the cluster's"},
		{skew: -time.Hour, want: "this host's clock is 1h0m0s ahead of the cluster's"},
		{skew: time.Hour, skip: []string{"time"}},
	} {
		err := checkSkew(tc.skew, tc.skip)
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("skew %v skip %v: %v, want %q", tc.skew, tc.skip, err, tc.want)
		}
	}
}

// TestRecordPeers: a pending join goes on with any master the cluster had
// when it admitted the node, after the one it started with and any named.
func TestRecordPeers(t *testing.T) {
	masters := []clusterservice.Member{{IP: "10.0.0.1", Master: true}, {IP: "10.0.0.2", Master: true}, {IP: "10.0.0.4", Master: true}}
	for _, tc := range []struct {
		name  string
		peer  string
		self  string
		extra []string
		want  []string
	}{
		{"every master after the first", "10.0.0.1:3009", "10.0.0.9", nil, []string{"10.0.0.1:3009", "10.0.0.2", "10.0.0.4"}},
		{"named peers before the rest", "10.0.0.1:3009", "10.0.0.9", []string{"10.0.0.4"}, []string{"10.0.0.1:3009", "10.0.0.4", "10.0.0.2"}},
		{"not itself (a joining master listed)", "10.0.0.1:3009", "10.0.0.4", nil, []string{"10.0.0.1:3009", "10.0.0.2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &record{Peer: tc.peer, Node: clusterservice.NodeConfig{Self: clusterservice.Member{IP: tc.self}, Masters: masters}}
			if got := r.peers(tc.extra); !slices.Equal(got, tc.want) {
				t.Errorf("peers %v, want %v", got, tc.want)
			}
		})
	}
}
