//go:build e2e

package e2e

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkRuntime measures a master's runtime on a fresh test host: the
// time from `gravity runtime start` to the node being Ready, and the
// resident memory of every process on the host once it has idled for
// GRAVITY_BENCH_IDLE (default 30 s). Run by `make bench`.
func BenchmarkRuntime(b *testing.B) {
	idle := 30 * time.Second
	if v, err := time.ParseDuration(os.Getenv("GRAVITY_BENCH_IDLE")); err == nil {
		idle = v
	}
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		c := newCluster(b, ctx, "gbench", "10.233.0.0/24")
		h, nodeYAML := c.addNode("n1", 1)
		start := time.Now()
		c.start(h, nodeYAML)
		c.waitNodeReady(h)
		ready := time.Since(start)
		c.waitRunning(h)
		time.Sleep(idle)
		rss, byName := hostRSS(b, h.Path("/proc"))
		b.ReportMetric(ready.Seconds(), "s-to-Ready")
		b.ReportMetric(float64(rss)/(1<<20), "MiB-idle-RSS")
		names := slices.Sorted(maps.Keys(byName))
		for _, name := range names {
			b.Logf("%-28s %6.1f MiB", name, float64(byName[name])/1024)
		}
		cancel()
	}
}

// hostRSS sums VmRSS over the processes of a host's /proc, in bytes, and
// by command name in KiB.
func hostRSS(b testing.TB, proc string) (int64, map[string]int64) {
	ents, err := os.ReadDir(proc)
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	byName := map[string]int64{}
	for _, e := range ents {
		// PID 1 is the test host's own init, not part of a node.
		if pid, err := strconv.Atoi(e.Name()); err != nil || pid == 1 {
			continue
		}
		data, err := os.ReadFile(filepath.Join(proc, e.Name(), "status"))
		if err != nil {
			continue // gone meanwhile
		}
		name, kb := "", int64(0)
		for _, line := range strings.Split(string(data), "\n") {
			k, v, _ := strings.Cut(line, ":")
			switch k {
			case "Name":
				name = strings.TrimSpace(v)
			case "VmRSS":
				kb, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			}
		}
		total += kb << 10
		byName[commandName(filepath.Join(proc, e.Name()), name)] += kb
	}
	return total, byName
}

// commandName tells the multicall binaries' components apart: kube runs
// the one named by its first argument, gravity its runtime subcommands.
func commandName(dir, comm string) string {
	raw, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil {
		return comm
	}
	argv := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	switch {
	case comm == "kube" && len(argv) > 1:
		return argv[1]
	case comm == "gravity" && len(argv) > 2:
		return "gravity " + argv[1] + " " + argv[2]
	}
	return comm
}

// BenchmarkInstall installs the walkthrough's v1 image on a fresh test
// host and reports the time from `./gravity install` to "Installation
// succeeded", and each phase's. Run by `make bench`.
func BenchmarkInstall(b *testing.B) {
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		ih := newInstallHost(b, ctx, "gbinst", "10.238.0.0/24")
		image := ih.unpack("v1", ih.buildImage(filepath.Join(repo, "examples/gravity101/v1"), "v1"))
		start := time.Now()
		ih.mustRun(filepath.Join(image, "gravity"), "install", "--cloud-provider=generic")
		total := time.Since(start)
		b.ReportMetric(total.Seconds(), "s-to-succeeded")
		for _, ph := range ih.readPlan().Leaves() {
			b.Logf("%-30s %6.2f s", ph.ID, ph.Finished.Sub(ph.Started).Seconds())
		}
		ih.mustRun("gravity", "leave", "--force")
		cancel()
	}
}
