package preflight

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opengravity/gravity/internal/mountinfo"
)

// minKernelMajor: overlayfs with multiple lower dirs and the cgroup and
// netfilter features the runtime uses all need a 4.x kernel.
const minKernelMajor = 4

func checkOS(_ context.Context, e *env) Result {
	data, err := e.read("/etc/os-release")
	if err != nil {
		return fail("cannot identify the distribution: %v", err)
	}
	rel := parseOSRelease(data)
	id, ver := rel["ID"], rel["VERSION_ID"]
	r := matchOS(e.req.OS, id, ver)
	if r.Status == Fail {
		return r.with("id", id, "version", ver)
	}
	kr := kernelResult(e)
	if kr.Status != Pass {
		return kr.with("id", id, "version", ver)
	}
	return pass("%s; %s", r.Message, kr.Message).with("id", id, "version", ver, "kernel", kr.Detail["kernel"])
}

// matchOS compares os-release ID and VERSION_ID with the supported list.
// A requirement version "8" matches "8" and "8.9": os-release versions
// are as precise as the vendor likes and app authors write the major.
func matchOS(reqs []OSRequirement, id, ver string) Result {
	name := strings.TrimSpace(id + " " + ver)
	if len(reqs) == 0 {
		return pass("distribution %s (no OS requirement)", name)
	}
	var want []string
	for _, o := range reqs {
		want = append(want, strings.TrimSpace(o.Name+" "+strings.Join(o.Versions, "/")))
		if !strings.EqualFold(o.Name, id) {
			continue
		}
		if len(o.Versions) == 0 {
			return pass("distribution %s is supported", name)
		}
		for _, v := range o.Versions {
			if ver == v || strings.HasPrefix(ver, v+".") {
				return pass("distribution %s is supported", name)
			}
		}
	}
	return fail("distribution %q is not supported by this application (supported: %s); install on one of those",
		name, strings.Join(want, ", "))
}

func kernelResult(e *env) Result {
	rel, err := e.kernelRelease()
	if err != nil {
		return warn("cannot read the kernel version: %v", err)
	}
	major, err := parseVersionMajor(rel)
	if err != nil {
		return warn("%v", err).with("kernel", rel)
	}
	if major < minKernelMajor {
		return fail("kernel %s is too old: need %d.x or newer; upgrade the kernel", rel, minKernelMajor).with("kernel", rel)
	}
	return pass("kernel %s", rel).with("kernel", rel)
}

func checkCPU(_ context.Context, e *env) Result {
	data, err := e.read("/proc/cpuinfo")
	if err != nil {
		return fail("cannot count CPUs: %v", err)
	}
	return cpuResult(countCPUs(data), e.req.MinCPU, e.req.MaxCPU, e.shortfall("cpu"))
}

func cpuResult(n, min, max int, short Status) Result {
	switch {
	case n == 0:
		return fail("/proc/cpuinfo lists no processors")
	case min > 0 && n < min:
		return Result{Status: short, Message: fmt.Sprintf("%d CPUs, need at least %d; give the machine more CPUs", n, min)}.with("cpus", n)
	case max > 0 && n > max:
		return fail("%d CPUs, this application allows at most %d; use a smaller machine", n, max).with("cpus", n)
	}
	return pass("%d CPUs", n).with("cpus", n)
}

func checkRAM(_ context.Context, e *env) Result {
	data, err := e.read("/proc/meminfo")
	if err != nil {
		return fail("cannot read memory size: %v", err)
	}
	total, err := parseMemTotal(data)
	if err != nil {
		return fail("cannot read memory size: %v", err)
	}
	return ramResult(total, e.req.MinRAM, e.req.MaxRAM, e.shortfall("ram"))
}

func ramResult(total, min, max uint64, short Status) Result {
	switch {
	case min > 0 && total < min:
		return Result{Status: short, Message: fmt.Sprintf("%s of RAM, need at least %s; add memory", human(total), human(min))}.with("bytes", total)
	case max > 0 && total > max:
		return fail("%s of RAM, this application allows at most %s", human(total), human(max)).with("bytes", total)
	}
	return pass("%s of RAM", human(total)).with("bytes", total)
}

// saneEpoch: certificates issued at install must not look issued in the
// past; any clock before this project existed is certainly wrong.
var saneEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func checkTime(_ context.Context, e *env) Result {
	now := e.host.Now()
	synced, known := e.host.ClockSynced()
	return timeResult(now, synced, known)
}

func timeResult(now time.Time, synced, known bool) Result {
	if now.Before(saneEpoch) {
		return fail("system clock says %s, which is before %s; set the clock (e.g. `timedatectl set-time` or enable NTP)",
			now.UTC().Format(time.RFC3339), saneEpoch.Format("2006-01-02"))
	}
	// Sync only warns: air-gapped hosts often have no time source at all.
	if !known {
		return warn("clock %s; cannot tell whether it is synchronized", now.UTC().Format(time.RFC3339))
	}
	if !synced {
		return warn("clock %s is not synchronized; nodes whose clocks drift apart reject each other's certificates, so configure NTP (chrony or systemd-timesyncd)",
			now.UTC().Format(time.RFC3339))
	}
	return pass("clock %s, synchronized", now.UTC().Format(time.RFC3339))
}

var requiredControllers = []string{"cpu", "memory", "pids"}

func checkCgroups(_ context.Context, e *env) Result {
	data, err := e.read("/proc/self/mountinfo")
	if err != nil {
		return fail("cannot read mounts: %v", err)
	}
	mounts, err := mountinfo.Parse(data)
	if err != nil {
		return fail("cannot parse mounts: %v", err)
	}
	v1, _ := e.read("/proc/cgroups")
	return cgroupResult(mounts, parseProcCgroups(v1), e.v2Controllers(mounts))
}

// v2Controllers reads cgroup.controllers at the first cgroup2 mount.
func (e *env) v2Controllers(mounts []mountinfo.Entry) map[string]bool {
	out := map[string]bool{}
	for _, m := range mounts {
		if m.FSType != "cgroup2" {
			continue
		}
		s, err := e.read(m.Point + "/cgroup.controllers")
		if err == nil {
			for _, c := range strings.Fields(s) {
				out[c] = true
			}
			return out
		}
	}
	return out
}

func cgroupResult(mounts []mountinfo.Entry, v1, v2 map[string]bool) Result {
	var hasV1, hasV2 bool
	for _, m := range mounts {
		hasV1 = hasV1 || m.FSType == "cgroup"
		hasV2 = hasV2 || m.FSType == "cgroup2"
	}
	if !hasV1 && !hasV2 {
		return fail("no cgroup filesystem is mounted; mount cgroup2 on /sys/fs/cgroup (systemd does this at boot)")
	}
	var missing []string
	for _, c := range requiredControllers {
		if !(hasV1 && v1[c]) && !v2[c] {
			missing = append(missing, c)
		}
	}
	version := map[bool]string{true: "v2", false: "v1"}[hasV2 && !hasV1]
	if hasV1 && hasV2 {
		version = "hybrid"
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fail("cgroup controllers missing: %s; enable them (kernel config or cgroup_enable= boot parameters)",
			strings.Join(missing, ", ")).with("version", version, "missing", missing)
	}
	return pass("cgroup %s with controllers %s", version, strings.Join(requiredControllers, ", ")).with("version", version)
}

// human formats bytes in binary units, like the manifest's sizes.
func human(n uint64) string {
	switch {
	case n >= GiB:
		return fmt.Sprintf("%.1f GiB", float64(n)/GiB)
	case n >= MiB:
		return fmt.Sprintf("%.1f MiB", float64(n)/MiB)
	}
	return fmt.Sprintf("%d bytes", n)
}
