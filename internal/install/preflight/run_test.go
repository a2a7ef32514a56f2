package preflight

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opengravity/gravity/internal/manifest"
)

func TestRunHealthyFixture(t *testing.T) {
	rep, err := Run(context.Background(), fixedHost(healthyRoot(t, nil)), Defaults("/var/lib/gravity"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Failed()) != 0 {
		t.Errorf("failed: %+v", rep.Failed())
	}
	for _, r := range rep.Results {
		if r.Status != Pass {
			t.Errorf("%s: %s %q", r.Name, r.Status, r.Message)
		}
	}
	if rep.Node != "node-1" {
		t.Errorf("node %q", rep.Node)
	}
}

func TestRunSkip(t *testing.T) {
	rep, err := Run(context.Background(), fixedHost(healthyRoot(t, nil)), Defaults(""), []string{"disk-speed", "ports"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Skipped, []string{"disk-speed", "ports"}) {
		t.Errorf("skipped %v", rep.Skipped)
	}
	for _, r := range rep.Results {
		if r.Name == "disk-speed" || r.Name == "ports" {
			t.Errorf("skipped check %s ran", r.Name)
		}
	}
	if len(rep.Results) != len(Checks())-2 {
		t.Errorf("%d results", len(rep.Results))
	}
}

func TestRunUnknownSkip(t *testing.T) {
	_, err := Run(context.Background(), fixedHost(t.TempDir()), Defaults(""), []string{"ram", "disk_space", "nope"})
	if err == nil {
		t.Fatal("no error for unknown check names")
	}
	for _, want := range []string{`"disk_space"`, `"nope"`, "disk-space", "conflicting-software"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if strings.Contains(err.Error(), `"ram"`) {
		t.Errorf("error %q calls a valid name unknown", err)
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, fixedHost(healthyRoot(t, nil)), Defaults(""), nil); err == nil {
		t.Fatal("no error from a cancelled run")
	}
}

// TestFailedRunChangesNothing: a run with failures (including a disk-speed
// failure, the one check that writes) leaves the fixture tree as it was.
func TestFailedRunChangesNothing(t *testing.T) {
	root := healthyRoot(t, map[string]string{
		"/proc/300/comm": "dockerd\n", "/proc/300/exe": "->/usr/bin/dockerd",
		"/proc/modules": "overlay 1 0 - Live 0\n",
	})
	req := Defaults("/var/lib/gravity/deep/state")
	req.MinWriteRate = 1 << 50
	req.MinDisk = 1 << 50
	req.Advisory = nil
	before := snapshot(t, root)
	rep, err := Run(context.Background(), fixedHost(root), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, r := range rep.Failed() {
		failed = append(failed, r.Name)
	}
	want := []string{"disk-space", "disk-speed", "kernel-modules", "conflicting-software"}
	if !slices.Equal(failed, want) {
		t.Errorf("failed %v, want %v", failed, want)
	}
	assertSameTree(t, before, snapshot(t, root))
}

func TestReportJSON(t *testing.T) {
	rep, err := Run(context.Background(), fixedHost(healthyRoot(t, map[string]string{"/proc/modules": "overlay 1 0 - Live 0\n"})),
		Defaults("/var/lib/gravity"), []string{"time"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "report.json")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temp files left behind: %v", ents)
	}
	data, _ := os.ReadFile(path)
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	// Detail numbers come back as float64, so compare re-encodings.
	again, _ := json.MarshalIndent(back, "", "  ")
	if string(again)+"\n" != string(data) {
		t.Errorf("round trip differs:\n%s\nvs\n%s", again, data)
	}
	if !back.Time.Equal(rep.Time) || back.Node != rep.Node || !slices.Equal(back.Skipped, []string{"time"}) {
		t.Errorf("round trip lost fields: %+v", back)
	}
	if len(back.Failed()) != 1 || back.Failed()[0].Name != "kernel-modules" {
		t.Errorf("failed after round trip: %+v", back.Failed())
	}
	if err := rep.WriteJSON(filepath.Join(dir, "missing", "r.json")); err == nil {
		t.Error("WriteJSON into a missing dir succeeded")
	}
}

func TestFromProfile(t *testing.T) {
	yes := true
	p := &manifest.NodeProfile{Name: "master", Requirements: &manifest.Requirements{
		CPU: &manifest.CPU{Min: 4, Max: 32},
		RAM: &manifest.RAM{Min: "8GB"},
		OS:  []manifest.OS{{Name: "ubuntu", Versions: []string{"22.04"}}},
		Network: &manifest.Network{Ports: []manifest.Port{
			{Ranges: []string{"8080"}}, {Protocol: "udp", Ranges: []string{"8472-8473"}},
		}},
		Volumes: []manifest.Volume{
			{Path: "/var/lib/gravity/", Capacity: "50GB", MinTransferRate: "50MB/s"},
			{Path: "/var/lib/data", Capacity: "100GB", CreateIfMissing: &yes},
			{Path: "/mnt/ignored"},
		},
	}}
	r, err := FromProfile(p, "/var/lib/gravity")
	if err != nil {
		t.Fatal(err)
	}
	if r.MinCPU != 4 || r.MaxCPU != 32 || r.MinRAM != 8*GiB || r.MaxRAM != 0 {
		t.Errorf("cpu/ram: %+v", r)
	}
	if r.MinDisk != 50*GiB || r.MinWriteRate != 50*MiB {
		t.Errorf("disk: %d %d", r.MinDisk, r.MinWriteRate)
	}
	if len(r.Advisory) != 0 {
		t.Errorf("advisory %v after the manifest set every threshold", r.Advisory)
	}
	if !slices.Equal(r.Volumes, []Volume{{Path: "/var/lib/data", MinCapacity: 100 * GiB}}) {
		t.Errorf("volumes %+v", r.Volumes)
	}
	tail := r.Ports[len(DefaultPorts):]
	want := []PortRange{{"tcp", 8080, 8080}, {"udp", 8472, 8473}}
	if !slices.Equal(tail, want) {
		t.Errorf("manifest ports %+v, want %+v", tail, want)
	}
	if len(r.OS) != 1 || r.OS[0].Name != "ubuntu" {
		t.Errorf("os %+v", r.OS)
	}

	d, err := FromProfile(&manifest.NodeProfile{Name: "n"}, "")
	if err != nil || d.StateDir != DefaultStateDir || !slices.Equal(d.Advisory, Defaults("").Advisory) {
		t.Errorf("no requirements: %+v, %v", d, err)
	}
	for _, bad := range []*manifest.Requirements{
		{RAM: &manifest.RAM{Min: "lots"}},
		{Network: &manifest.Network{Ports: []manifest.Port{{Ranges: []string{"70000"}}}}},
		{Network: &manifest.Network{Ports: []manifest.Port{{Protocol: "sctp", Ranges: []string{"1"}}}}},
		{Volumes: []manifest.Volume{{Path: "/var/lib/gravity", MinTransferRate: "50MB"}}},
	} {
		if _, err := FromProfile(&manifest.NodeProfile{Name: "n", Requirements: bad}, ""); err == nil {
			t.Errorf("no error for %+v", bad)
		}
	}
}

func TestParsePortRange(t *testing.T) {
	good := map[string][2]int{"1": {1, 1}, "8000-8010": {8000, 8010}, " 65535 ": {65535, 65535}}
	for s, want := range good {
		if a, b, err := ParsePortRange(s); err != nil || a != want[0] || b != want[1] {
			t.Errorf("%q: %d-%d %v", s, a, b, err)
		}
	}
	for _, s := range []string{"", "0", "65536", "10-5", "a", "1-", "-1", "1-2-3"} {
		if _, _, err := ParsePortRange(s); err == nil {
			t.Errorf("%q: no error", s)
		}
	}
}
