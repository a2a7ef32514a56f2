package join

import (
	"strings"
	"testing"
	"time"
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
