//go:build e2e

// Package e2e holds the end-to-end tests: real runtime binaries (make
// runtime) on test hosts. Run with `make test-e2e`.
package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/opengravity/gravity/internal/baseimage"
	"github.com/opengravity/gravity/internal/runtime/node"
	"github.com/opengravity/gravity/internal/testhost"
)

// repo is the repository root; the test hosts see it at the same path
// (only /usr, /etc, /root, /opt, /var, /run and /tmp are their own).
var repo = func() string { d, _ := filepath.Abs("../.."); return d }()

// TestSingleNodeRuntime starts the runtime from `make runtime`'s binaries
// on a fresh test host: node Ready, a pod whose image comes from
// registry.local:5000 Running, a Job completed, nothing sent off the hosts'
// bridge.
func TestSingleNodeRuntime(t *testing.T) {
	bin := filepath.Join(repo, "build/runtime/bin")
	if _, err := os.Stat(filepath.Join(bin, "kube")); err != nil {
		t.Fatalf("no runtime binaries in %s: run `make runtime` first", bin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	work := filepath.Join(repo, "build/e2e")
	gravity, pause := goBuild(t, work, "gravity"), goBuild(t, work, "pause")

	// Cleanups run last-registered first: this one, after the hosts are
	// gone, removes the cgroups kubelet made on the shared kernel.
	var cgroupRoot string
	t.Cleanup(func() {
		if cgroupRoot == "" {
			return
		}
		mi, err := os.Open("/proc/self/mountinfo")
		if err != nil {
			t.Error(err)
			return
		}
		defer mi.Close()
		if err := node.RemoveCgroups(mi, cgroupRoot); err != nil {
			t.Errorf("cgroups left: %v", err)
		}
	})
	net, err := testhost.NewNetwork(ctx, testhost.Options{Prefix: "ge2e", Subnet: "10.232.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = net.Close() })
	h, err := net.AddHost(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	ip := h.IP.String()
	nodeYAML := filepath.Join(work, "node.yaml")
	writeFile(t, nodeYAML, fmt.Sprintf("ip: %s\nroles: [master, node]\nclusterName: e2e\nmasterIPs: [%s]\nnodePodCIDR: 10.244.1.0/24\nbinDir: %s\n", ip, ip, bin))
	n, err := node.LoadNode(nodeYAML)
	if err == nil {
		n, err = n.WithDefaults()
	}
	if err != nil {
		t.Fatal(err)
	}
	cgroupRoot = n.CgroupRoot
	if err := node.Bootstrap(h.Path("/"), n, "e2e"); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	run(t, ctx, h, gravity, "runtime", "start", "--config", nodeYAML)
	t.Cleanup(func() { _, _, _ = h.Run(context.Background(), gravity, "runtime", "stop") })
	try := func(args ...string) (string, error) {
		out, _, err := h.Run(ctx, filepath.Join(bin, "kubectl"), append([]string{"--kubeconfig", adminConf}, args...)...)
		return out, err
	}
	kubectl := func(args ...string) string {
		t.Helper()
		return run(t, ctx, h, filepath.Join(bin, "kubectl"), append([]string{"--kubeconfig", adminConf}, args...)...)
	}
	waitFor(t, ctx, "node Ready", func() bool {
		out, _ := try("get", "nodes")
		return strings.Contains(out, " Ready ")
	})
	t.Logf("node Ready %.1f s after gravity runtime start", time.Since(start).Seconds())

	waitFor(t, ctx, "every component ready", func() bool {
		out, _, _ := h.Run(ctx, gravity, "runtime", "status", "-o", "json")
		return strings.Contains(out, `"state": "running"`)
	})
	pushImages(t, h, ip, pause)
	waitFor(t, ctx, "the default service account", func() bool {
		_, err := try("get", "serviceaccount", "default")
		return err == nil
	})
	manifests := filepath.Join(work, "workloads.yaml")
	writeFile(t, manifests, workloads)
	kubectl("apply", "-f", manifests)
	waitFor(t, ctx, "pod Running", func() bool {
		out, _ := try("get", "pod", "alpine", "-o", "jsonpath={.status.phase}")
		return out == "Running"
	})
	if img := kubectl("get", "pod", "alpine", "-o", "jsonpath={.spec.containers[0].image}"); img != "registry.local:5000/alpine:3.3" {
		t.Errorf("pod image %q", img)
	}
	kubectl("wait", "--for=condition=complete", "--timeout=60s", "job/hello")
	if drops, err := net.EgressDrops(ctx); err != nil || drops != 0 {
		t.Errorf("packets dropped leaving the test hosts: %d (%v)", drops, err)
	}
}

const adminConf = "/var/lib/gravity/secrets/kubeconfig/admin.conf"

const workloads = `apiVersion: v1
kind: Pod
metadata:
  name: alpine
spec:
  containers:
  - name: alpine
    image: "registry.local:5000/alpine:3.3"
    command: ["/bin/sleep", "90000"]
---
apiVersion: batch/v1
kind: Job
metadata:
  name: hello
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: hello
        image: "registry.local:5000/alpine:3.3"
        command: ["/bin/sh", "-c", "echo hello from a job"]
`

// pushImages fills the node's registry over mTLS, as install's export
// phase will: our pause (the sandbox image) and a busybox stand-in for
// the walkthrough's alpine:3.3.
func pushImages(t *testing.T, h *testhost.Host, ip, pause string) {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Fatal("needs Debian's busybox-static for the test image")
	}
	sec := h.Path("/var/lib/gravity/secrets")
	cert, err := tls.LoadX509KeyPair(filepath.Join(sec, "registry-client.crt"), filepath.Join(sec, "registry-client.key"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(sec, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tr := &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool}}
	images := map[string]baseimage.ImageSpec{
		"gravitational/pause:0.1.0": {Files: []baseimage.ImageFile{{Path: "pause", Source: pause}}, Entrypoint: []string{"/pause"}, User: "65535:65535"},
		"alpine:3.3": {Files: []baseimage.ImageFile{{Path: "bin/busybox", Source: "/bin/busybox"}},
			Symlinks: map[string]string{"bin/sh": "busybox", "bin/sleep": "busybox", "bin/echo": "busybox"}},
	}
	for ref, spec := range images {
		img, err := baseimage.BuildImage(spec, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		push(t, ip+":5000/"+ref, img, tr)
	}
}

func push(t *testing.T, ref string, img v1.Image, tr http.RoundTripper) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithTransport(tr)); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
}

func goBuild(t *testing.T, dir, cmd string) string {
	t.Helper()
	out := filepath.Join(dir, cmd)
	c := exec.Command("go", "build", "-o", out, "./cmd/"+cmd)
	c.Dir, c.Env = repo, append(os.Environ(), "CGO_ENABLED=0")
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", cmd, err, b)
	}
	return out
}

func run(t *testing.T, ctx context.Context, h *testhost.Host, name string, args ...string) string {
	t.Helper()
	out, errOut, err := h.Run(ctx, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, errOut)
	}
	return strings.TrimSpace(out)
}

func waitFor(t *testing.T, ctx context.Context, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
