package preflight

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// diskTarget is one directory whose filesystem is measured.
type diskTarget struct {
	path          string // absolute path on the node
	minBytes      uint64
	minRate       uint64
	advisorySpace bool
	advisoryRate  bool
}

func (e *env) diskTargets() []diskTarget {
	out := []diskTarget{{
		path: e.req.StateDir, minBytes: e.req.MinDisk, minRate: e.req.MinWriteRate,
		advisorySpace: e.advisory("disk-space"), advisoryRate: e.advisory("disk-speed"),
	}}
	for _, v := range e.req.Volumes {
		out = append(out, diskTarget{path: v.Path, minBytes: v.MinCapacity, minRate: v.MinWriteRate})
	}
	return out
}

func checkDiskSpace(_ context.Context, e *env) Result {
	var results []Result
	for _, t := range e.diskTargets() {
		if t.path == "" || t.minBytes == 0 {
			continue
		}
		results = append(results, e.spaceResult(t))
	}
	return merge(results, "no disk space requirement")
}

func (e *env) spaceResult(t diskTarget) Result {
	dir, err := nearestExisting(e.path(t.path))
	if err != nil {
		return fail("%s: %v", t.path, err)
	}
	free, err := e.host.FreeBytes(dir)
	if err != nil {
		return fail("%s: cannot measure free space: %v", t.path, err)
	}
	return spaceVerdict(t, free)
}

func spaceVerdict(t diskTarget, free uint64) Result {
	if free >= t.minBytes {
		return pass("%s: %s free (need %s)", t.path, human(free), human(t.minBytes))
	}
	st := Fail
	if t.advisorySpace {
		st = Warn
	}
	return Result{Status: st, Message: fmt.Sprintf("%s: %s free, need %s; free space or put it on a larger filesystem",
		t.path, human(free), human(t.minBytes))}
}

func checkDiskSpeed(ctx context.Context, e *env) Result {
	var results []Result
	for _, t := range e.diskTargets() {
		if t.path == "" || t.minRate == 0 {
			continue
		}
		results = append(results, e.speedResult(ctx, t))
	}
	return merge(results, "no disk speed requirement")
}

func (e *env) speedResult(ctx context.Context, t diskTarget) Result {
	dir, err := nearestExisting(e.path(t.path))
	if err != nil {
		return fail("%s: %v", t.path, err)
	}
	rate, err := measureWrite(ctx, dir, e.host.WriteSize)
	if err != nil {
		return fail("%s: cannot measure write speed: %v", t.path, err)
	}
	return speedVerdict(t, rate)
}

func speedVerdict(t diskTarget, rate uint64) Result {
	if rate >= t.minRate {
		return pass("%s: writes at %s/s (need %s/s)", t.path, human(rate), human(t.minRate))
	}
	st := Fail
	if t.advisoryRate {
		st = Warn
	}
	return Result{Status: st, Message: fmt.Sprintf("%s: writes at %s/s, need %s/s; etcd on slow disks loses leader elections, use faster storage",
		t.path, human(rate), human(t.minRate))}
}

// measureWrite writes size bytes to a temp file in dir with one fsync at
// the end and removes it; the sync is what makes the number mean disk
// speed rather than page-cache speed.
func measureWrite(ctx context.Context, dir string, size int64) (rate uint64, err error) {
	defer keepTimes(dir)()
	f, err := os.CreateTemp(dir, ".gravity-preflight-*")
	if err != nil {
		return 0, fmt.Errorf("create test file: %w", err)
	}
	defer func() {
		f.Close()
		if rerr := os.Remove(f.Name()); rerr != nil && err == nil {
			err = fmt.Errorf("remove test file: %w", rerr)
		}
	}()
	buf := make([]byte, 1*MiB)
	for i := range buf {
		buf[i] = byte(i*7 + 1) // not zeros, so compressing filesystems do the work
	}
	start := time.Now()
	for written := int64(0); written < size; written += int64(len(buf)) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if _, err := f.Write(buf[:min(int64(len(buf)), size-written)]); err != nil {
			return 0, fmt.Errorf("write test file: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("sync test file: %w", err)
	}
	elapsed := time.Since(start)
	if elapsed <= 0 {
		elapsed = time.Nanosecond
	}
	return uint64(float64(size) / elapsed.Seconds()), nil
}

// keepTimes returns a func that puts dir's access and modification times
// back, so the test file leaves no trace beyond the ctime the kernel keeps.
func keepTimes(dir string) func() {
	fi, err := os.Stat(dir)
	if err != nil {
		return func() {}
	}
	mtime, atime := fi.ModTime(), fi.ModTime()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		atime = time.Unix(st.Atim.Sec, st.Atim.Nsec)
	}
	return func() { _ = os.Chtimes(dir, atime, mtime) }
}

// merge folds per-directory results into one: the worst status wins and
// every message is kept, so the user sees all directories at once.
func merge(rs []Result, none string) Result {
	if len(rs) == 0 {
		return pass("%s", none)
	}
	out := Result{Status: Pass}
	var msgs []string
	for _, r := range rs {
		out.Status = worse(out.Status, r.Status)
		msgs = append(msgs, r.Message)
	}
	out.Message = strings.Join(msgs, "; ")
	return out
}

func worse(a, b Status) Status {
	rank := map[Status]int{Pass: 0, Warn: 1, Fail: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}
