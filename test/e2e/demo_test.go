//go:build e2e

package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opengravity/gravity/internal/testhost"
)

// TestDemo runs the README's first command, `make demo`, from a copy of
// the checkout under /tmp, which test hosts do not share: the cluster image
// must reach the node as a user's scp would, not through the build tree.
// The copy takes the build outputs along, so only the demo itself runs.
// Then `make demo-down` must leave nothing of the host or its cluster.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const prefix, subnet = "gdt", "10.239.0.0/24"
	checkout := copyCheckout(t)
	if !strings.HasPrefix(checkout, "/tmp/") {
		t.Fatalf("the copy is at %s, not under /tmp: the test proves nothing", checkout)
	}
	cgroupsBefore := gravityCgroups(t)
	mk := func(target string) (string, error) {
		cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "-C", checkout, target,
			"DEMO_PREFIX="+prefix, "DEMO_SUBNET="+subnet, "STATE_DIR="+filepath.Join(checkout, "state"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	downed := false
	t.Cleanup(func() {
		if !downed {
			if out, err := mk("demo-down"); err != nil {
				t.Errorf("make demo-down after a failure: %v\n%s", err, out)
			}
		}
	})

	out, err := mk("demo")
	if err != nil {
		t.Fatalf("make demo from %s: %v\n%s", checkout, err, out)
	}
	for _, want := range []string{
		"Installation succeeded in",
		"registry.local:5000/alpine:3.3", // the app's pod, from kubectl get pods
		"alpine-0.0.1",                   // helm ls
		"Cluster name:",                  // gravity status
		"Cluster management URL:",
		"Signup token has been created and is valid for 8h0m0s hours", // gravity users add
		"Created token for user \"agent@example.com\"",                // gravity resource create agent.yaml
		"qwe123", // gravity resource get tokens
		"gravity install: ",
		"Look around, as on node-1:",
		"--prefix " + prefix + " h1 -- kubectl get pods -A -o wide",
		"--prefix " + prefix + " h1 -- helm ls",
		"--prefix " + prefix + " h1 -- gravity status",
		"make demo-down",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("make demo printed no %q", want)
		}
	}
	if t.Failed() {
		t.Logf("make demo:\n%s", out)
	}

	downed = true
	if out, err := mk("demo-down"); err != nil {
		t.Fatalf("make demo-down: %v\n%s", err, out)
	}
	left, err := testhost.Leftovers(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("make demo-down left:\n%s", strings.Join(left, "\n"))
	}
	if _, err := os.Stat(filepath.Join(testhost.DefaultWorkDir, prefix)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("make demo-down left the hosts' state dir: %v", err)
	}
	if after := gravityCgroups(t); !slices.Equal(after, cgroupsBefore) {
		t.Errorf("make demo-down left cgroups: %v (before: %v)", after, cgroupsBefore)
	}
}

// copyCheckout copies the working tree (what git tracks and what it does
// not ignore, and .git so the build is stamped the same) into a new
// directory under /tmp, with the outputs the demo would otherwise build
// again: the runtime, the base image, the example images and the tools.
func copyCheckout(t *testing.T) string {
	t.Helper()
	dst, err := os.MkdirTemp("/tmp", "gravity-checkout-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dst) })
	files, err := exec.Command("git", "-C", repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	var names []string
	for _, f := range strings.Split(string(files), "\x00") {
		if _, err := os.Lstat(filepath.Join(repo, f)); f != "" && err == nil { // deleted but not yet staged: skip
			names = append(names, f)
		}
	}
	names = append(names, ".git")
	for _, b := range []string{"runtime", "base-images", "example-images", "tele", "gravity", "pause", "helm", "testhost"} {
		if _, err := os.Stat(filepath.Join(repo, "build", b)); err == nil {
			names = append(names, filepath.Join("build", b))
		}
	}
	// cp --parents keeps each name's directories; -a keeps modes and
	// times, so make finds the outputs up to date.
	cmd := exec.Command("cp", append([]string{"-a", "--parents", "-t", dst}, names...)...)
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("copying the checkout: %v\n%s", err, out)
	}
	return dst
}

// gravityCgroups lists the cgroups named like a gravity node's kubelet
// root, in every hierarchy.
func gravityCgroups(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob("/sys/fs/cgroup/*/gravity-*")
	if err != nil {
		t.Fatal(err)
	}
	unified, _ := filepath.Glob("/sys/fs/cgroup/gravity-*")
	return append(dirs, unified...)
}
