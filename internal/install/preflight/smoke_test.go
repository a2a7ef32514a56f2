package preflight

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
)

// TestRealHost runs every check on this machine. It asserts only that the
// report is well formed: what this host passes depends on the host.
func TestRealHost(t *testing.T) {
	if testing.Short() {
		t.Skip("touches the real host")
	}
	req := Defaults(t.TempDir() + "/state/does/not/exist")
	rep, err := Run(context.Background(), Host{Root: "/", WriteSize: 4 * MiB}, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rep.Results {
		names = append(names, r.Name)
		if r.Status != Pass && r.Status != Warn && r.Status != Fail {
			t.Errorf("%s: status %q", r.Name, r.Status)
		}
		if r.Message == "" {
			t.Errorf("%s: empty message", r.Name)
		}
	}
	if !slices.Equal(names, Checks()) {
		t.Errorf("results %v, want %v", names, Checks())
	}
	if rep.Time.IsZero() {
		t.Error("zero report time")
	}
	out, _ := json.MarshalIndent(rep, "", "  ")
	t.Logf("%s", out)
}
