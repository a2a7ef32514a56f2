//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opengravity/gravity/internal/plan"
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
		total, byName := hostMemory(b, h.Path("/proc"))
		b.ReportMetric(ready.Seconds(), "s-to-Ready")
		b.ReportMetric(float64(total.rss)/(1<<20), "MiB-idle-RSS")
		b.ReportMetric(float64(total.pss)/(1<<20), "MiB-idle-PSS")
		b.Logf("%-28s %10s %10s", "process", "RSS", "PSS")
		for _, name := range slices.Sorted(maps.Keys(byName)) {
			m := byName[name]
			b.Logf("%-28s %6.1f MiB %6.1f MiB", name, float64(m.rss)/(1<<20), float64(m.pss)/(1<<20))
		}
		cancel()
	}
}

// memory is resident memory in bytes: RSS counts every page a process
// maps, PSS divides each shared page among the processes sharing it. The
// Kubernetes components share one multicall binary, whose pages RSS
// counts once per process; PSS counts them once in all.
type memory struct{ rss, pss int64 }

// hostMemory sums memory over the processes of a host's /proc, and by
// command name.
func hostMemory(b testing.TB, proc string) (memory, map[string]memory) {
	ents, err := os.ReadDir(proc)
	if err != nil {
		b.Fatal(err)
	}
	var total memory
	byName := map[string]memory{}
	for _, e := range ents {
		// PID 1 is the test host's own init, not part of a node.
		if pid, err := strconv.Atoi(e.Name()); err != nil || pid == 1 {
			continue
		}
		// smaps_rollup has both, without the cost of the whole smaps.
		data, err := os.ReadFile(filepath.Join(proc, e.Name(), "smaps_rollup"))
		if err != nil {
			continue // gone meanwhile, or a kernel thread
		}
		m := memory{rss: kibField(data, "Rss") << 10, pss: kibField(data, "Pss") << 10}
		total.rss, total.pss = total.rss+m.rss, total.pss+m.pss
		comm, _ := os.ReadFile(filepath.Join(proc, e.Name(), "comm"))
		name := commandName(filepath.Join(proc, e.Name()), strings.TrimSpace(string(comm)))
		byName[name] = memory{rss: byName[name].rss + m.rss, pss: byName[name].pss + m.pss}
	}
	return total, byName
}

// kibField reads a "Key:   123 kB" line of a /proc file.
func kibField(data []byte, key string) int64 {
	for line := range strings.Lines(string(data)) {
		k, v, ok := strings.Cut(line, ":")
		if ok && k == key {
			if f := strings.Fields(v); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
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
// succeeded", and each phase's; then the cluster API of the installed
// node under load (benchAPI), tsh (benchTsh), and the web control panel's first load and
// login (checkWebPanel). Run by `make bench`.
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
		benchAPI(b, ih)
		benchTsh(b, ih)
		wp := checkWebPanel(b, ih)
		b.ReportMetric(float64(wp.FirstLoadBytes)/1024, "KiB-panel-first-load")
		b.ReportMetric(wp.ToDashboard.Seconds(), "s-login-to-dashboard")
		ih.mustRun("gravity", "leave", "--force")
		cancel()
	}
}

// BenchmarkJoin installs the walkthrough's v1 image on h1, then joins two
// masters and a worker as the walkthrough does, reporting each join's time
// and phases, the memory of the components joins added (the cluster
// service on a master, the API balancer on the worker), and how long the
// API is unanswerable from the worker once every process of master 1 is
// killed. Run by `make bench`.
func BenchmarkJoin(b *testing.B) {
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		ih := newInstallHost(b, ctx, "gbjoin", "10.240.0.0/24")
		image := ih.unpack("v1", ih.buildImage(filepath.Join(repo, "examples/gravity101/v1"), "v1"))
		ih.mustRun(filepath.Join(image, "gravity"), "install", "--cloud-provider=generic")
		token := strings.TrimSpace(ih.mustRun("gravity", "status", "--token"))
		joined := time.Now()
		join := func(name, metric string, args ...string) *installHost {
			h := ih.addHost(name)
			h.put(ih.h.Path("/usr/local/bin/gravity"), "/root/gravity")
			// The test hosts share this machine's disk and its two cores:
			// what the joins before wrote is written back first, and the
			// master that joined last has warmed up (its API server's
			// start is seconds of CPU), as on hosts of their own neither
			// would be this host's to do.
			syscall.Sync()
			b.Logf("%s: CPU pressure %.0f%% (avg10) after a wait of %v", name, settle(b), time.Since(joined).Round(time.Second))
			start := time.Now()
			h.mustRun("/root/gravity", append([]string{"join", ih.h.IP.String(), "--token=" + token}, args...)...)
			b.ReportMetric(time.Since(start).Seconds(), metric)
			end := time.Now()
			joined = end
			leaves := h.readPlan().Leaves()
			// Before the plan: discovery, the preflight checks, admission;
			// after it: the cluster service completing the operation.
			b.Logf("%s %-22s %6.2f s", name, "(before the plan)", leaves[0].Started.Sub(start).Seconds())
			var between time.Duration // the plan saved on the node
			for i, ph := range leaves {
				b.Logf("%s %-22s %6.2f s", name, ph.ID, ph.Finished.Sub(ph.Started).Seconds())
				if i > 0 {
					between += ph.Started.Sub(leaves[i-1].Finished)
				}
			}
			b.Logf("%s %-22s %6.2f s", name, "(between phases)", between.Seconds())
			b.Logf("%s %-22s %6.2f s", name, "(after the plan)", end.Sub(leaves[len(leaves)-1].Finished).Seconds())
			// A new etcd member restarted by the runtime when its first
			// start stalled (node.etcdJoinRestart).
			if out, _ := h.run("grep", "-c", "not ready in time", "/var/log/gravity/runtime.log"); strings.TrimSpace(out) != "0" && out != "" {
				b.Logf("%s: etcd restarted once after a stalled first start", name)
			}
			return h
		}
		join("h2", "s-master-join")
		join("h3", "s-master-join-3rd")
		w := join("h4", "s-worker-join")
		_, byName := hostMemory(b, ih.h.Path("/proc"))
		b.ReportMetric(float64(byName["gravity runtime cluster-service"].rss)/(1<<20), "MiB-cluster-service-rss")
		_, byName = hostMemory(b, w.h.Path("/proc"))
		b.ReportMetric(float64(byName["gravity runtime api-lb"].rss)/(1<<20), "MiB-api-lb-rss")
		b.ReportMetric(float64(byName["gravity runtime agent"].rss)/(1<<20), "MiB-agent-rss")

		_, _ = ih.run("kill", "-9", "-1")
		down := time.Now()
		for {
			if _, err := w.run("kubectl", "--kubeconfig=/var/lib/gravity/secrets/kubeconfig/kubelet.conf", "get", "node", w.h.IP.String()); err == nil {
				break
			}
			if time.Since(down) > time.Minute {
				b.Fatal("the API did not answer the worker within a minute of master 1 going down")
			}
			time.Sleep(100 * time.Millisecond)
		}
		b.ReportMetric(time.Since(down).Seconds(), "s-api-gap-after-master-down")
		cancel()
	}
}

// BenchmarkUpgrade installs the walkthrough's v1 on one host, then
// upgrades it to v2 as the walkthrough does and reports: ./upload's time
// and throughput into the registry, `gravity upgrade` to operation
// completed (and each phase), the rollback of the completed upgrade, and
// the same upgrade again from a delta image, with the two images' sizes.
// Run by `make bench`.
func BenchmarkUpgrade(b *testing.B) {
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		ih := newInstallHost(b, ctx, "gbupg", "10.242.0.0/24")
		v1tar := ih.buildImage(filepath.Join(repo, "examples/gravity101/v1"), "v1")
		v2tar := ih.buildImage(filepath.Join(repo, "examples/gravity101/v2"), "v2")
		deltaTar := ih.buildImage(filepath.Join(repo, "examples/gravity101/v2"), "v2-delta", "--from", v1tar)
		v1 := ih.unpack("v1", v1tar)
		v2 := ih.unpack("v2", v2tar)
		delta := ih.unpack("v2-delta", deltaTar)
		size := func(p string) float64 {
			fi, err := os.Stat(p)
			if err != nil {
				b.Fatal(err)
			}
			return float64(fi.Size()) / 1e6
		}
		b.ReportMetric(size(v2tar), "MB-v2-image")
		b.ReportMetric(size(deltaTar), "MB-v2-delta-image")
		ih.mustRun(filepath.Join(v1, "gravity"), "install", "--cloud-provider=generic")

		start := time.Now()
		ih.mustRun(filepath.Join(v2, "upload"))
		upload := time.Since(start)
		b.ReportMetric(upload.Seconds(), "s-upload")
		b.ReportMetric(size(v2tar)/upload.Seconds(), "MB/s-upload")
		start = time.Now()
		ih.mustRun(filepath.Join(v2, "gravity"), "upgrade")
		b.ReportMetric(time.Since(start).Seconds(), "s-upgrade-to-completed")
		p := ih.clusterPlan()
		for _, ph := range p.Leaves() {
			b.Logf("%-24s %6.2f s", ph.ID, ph.Finished.Sub(ph.Started).Seconds())
		}
		start = time.Now()
		ih.mustRun("gravity", "upgrade", "--rollback-last")
		b.ReportMetric(time.Since(start).Seconds(), "s-rollback-last")
		start = time.Now()
		ih.mustRun(filepath.Join(delta, "upgrade"))
		b.ReportMetric(time.Since(start).Seconds(), "s-upgrade-from-delta")
		ih.mustRun("gravity", "leave", "--force")
		cancel()
	}
}

// BenchmarkRuntimeUpgrade: three masters and a worker, installed and
// joined, upgraded to a version on the next runtime (`make base-next`)
// while a Deployment behind a Service with a PodDisruptionBudget is
// queried from the worker. Reports the upgrade's total, each node's
// switch (drain, system upgrade, uncordon), and the failed requests.
// Run by `make bench`.
func BenchmarkRuntimeUpgrade(b *testing.B) {
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		ih := newInstallHost(b, ctx, "gbrt", "10.243.0.0/24")
		v1 := ih.unpack("v1", ih.buildImage(filepath.Join(repo, "examples/gravity101/v1"), "v1"))
		v2 := ih.unpack("v2", ih.buildImage(filepath.Join(repo, "test/e2e/testdata/nodehooks"), "v2"))
		ih.mustRun(filepath.Join(v1, "gravity"), "install", "--cloud-provider=generic")
		c := &haCluster{installHost: ih, hosts: map[string]*installHost{},
			token: strings.TrimSpace(ih.mustRun("gravity", "status", "--token"))}
		c.join(b, "h2")
		c.join(b, "h3")
		c.join(b, "h4") // the fourth node: a worker
		masters := []*installHost{ih, c.hosts["h2"], c.hosts["h3"]}
		stop := startLoad(b, c, masters, c.hosts["h4"], c.hosts["h4"])
		start := time.Now()
		ih.mustRun(filepath.Join(v2, "upgrade"))
		b.ReportMetric(time.Since(start).Seconds(), "s-upgrade-to-completed")
		failed, total := stop(false)
		b.ReportMetric(float64(failed), "failed-requests")
		b.ReportMetric(float64(total), "requests")
		p := ih.clusterPlan()
		took := func(ph *plan.Phase) float64 { s, f := ph.Span(); return f.Sub(s).Seconds() }
		for _, g := range p.Phases {
			if g.ID != "/masters" && g.ID != "/nodes" {
				b.Logf("%-24s %6.2f s", g.ID, took(g))
				continue
			}
			for _, n := range g.Phases {
				var parts []string
				for _, ph := range n.Phases {
					parts = append(parts, fmt.Sprintf("%s %.1f s", path.Base(ph.ID), took(ph)))
				}
				b.Logf("%-24s %6.2f s (%s)", n.ID, took(n), strings.Join(parts, ", "))
			}
		}
		for _, h := range []*installHost{c.hosts["h4"], c.hosts["h3"], c.hosts["h2"], ih} {
			h.mustRun("gravity", "leave", "--force")
		}
		cancel()
	}
}

// settle waits, a minute at most, until tasks waiting for a CPU stall less
// than a fifth of the time (the "some avg10" of /proc/pressure/cpu), and
// returns that figure.
func settle(b *testing.B) float64 {
	deadline := time.Now().Add(time.Minute)
	for {
		data, err := os.ReadFile("/proc/pressure/cpu")
		if err != nil {
			b.Fatalf("CPU pressure: %v", err)
		}
		var avg float64
		if _, err := fmt.Sscanf(string(data), "some avg10=%f", &avg); err != nil {
			b.Fatalf("CPU pressure %q: %v", data, err)
		}
		if avg < 20 || time.Now().After(deadline) {
			return avg
		}
		time.Sleep(time.Second)
	}
}
