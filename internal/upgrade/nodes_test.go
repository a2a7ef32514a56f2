package upgrade

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/clusterimage"
	"github.com/opengravity/gravity/internal/install"
	"github.com/opengravity/gravity/internal/kube/kubefake"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/runtime/node"
	"github.com/opengravity/gravity/internal/store"
)

// tarOf is a tar of files name → content.
func tarOf(t testing.TB, files map[string]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(data))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestBootstrap: a node takes exactly the layers its phase names from the
// blobs the driver sends, puts the packages in its store, unpacks the new
// runtime beside the one it runs, and removes it on rollback only once it
// no longer runs it.
func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	driver, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for ref, files := range map[string]map[string]string{
		RuntimeRef("0.1.1"):                    {"bin/kube": "kube 0.1.1"},
		"gravitational.io/cluster-image:0.0.2": {"app.yaml": "app"},
	} {
		if _, err := driver.PutPackage(ctx, ref, store.PackageMeta{Name: ref}, bytes.NewReader(tarOf(t, files))); err != nil {
			t.Fatal(err)
		}
	}
	rt, err := packageOf(driver, RuntimeRef("0.1.1"))
	if err != nil {
		t.Fatal(err)
	}
	app, err := packageOf(driver, "gravitational.io/cluster-image:0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	var sent bytes.Buffer
	if err := writeBlobs(&sent, driver, []Package{rt, app}); err != nil {
		t.Fatal(err)
	}
	payload := filepath.Join(t.TempDir(), "payload")
	if err := os.WriteFile(payload, sent.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	stateDir, root := t.TempDir(), t.TempDir()
	writeNode(t, stateDir, filepath.Join(root, "0.1.0", "bin"))
	data := map[string]string{dataPackages: encodePackages([]Package{rt, app}), dataRuntime: "0.1.1"}
	b, err := newBootstrap(stateDir, data, payload)
	if err != nil {
		t.Fatal(err)
	}
	b.root = root
	// A version from before the one running goes; the running one stays.
	for _, v := range []string{"0.0.9", "0.1.0"} {
		if err := os.MkdirAll(filepath.Join(root, v, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 { // idempotent
		if err := b.Execute(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := os.ReadFile(filepath.Join(root, "0.1.1", "bin", "kube")); err != nil || string(got) != "kube 0.1.1" {
		t.Fatalf("new runtime: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(root, "0.0.9")); !os.IsNotExist(err) {
		t.Errorf("an old runtime version was kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "0.1.0", "bin")); err != nil {
		t.Errorf("the running runtime version was removed: %v", err)
	}
	st, err := store.Open(install.Config{StateDir: stateDir}.PackagesDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{rt.Ref, app.Ref} {
		if _, err := st.Descriptor(ref); err != nil {
			t.Errorf("%s not in the node's store: %v", ref, err)
		}
	}

	// Rolled back while the node runs it: refused; once it does not, gone.
	writeNode(t, stateDir, filepath.Join(root, "0.1.1", "bin"))
	if err := b.Rollback(ctx); err == nil || !strings.Contains(err.Error(), "still runs runtime 0.1.1") {
		t.Fatalf("rollback of the running runtime: %v", err)
	}
	writeNode(t, stateDir, filepath.Join(root, "0.1.0", "bin"))
	if err := b.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "0.1.1")); !os.IsNotExist(err) {
		t.Errorf("new runtime left after the rollback: %v", err)
	}

	// Blobs the phase does not name, or that are not what it names, are
	// refused before anything is stored.
	other := t.TempDir()
	ost, _ := store.Open(other)
	for name, blobs := range map[string][]byte{
		"a blob of no package of the phase": tarOf(t, map[string]string{"blobs/sha256/" + strings.Repeat("0", 64): "x"}),
		"a layer of the wrong size":         tarOf(t, map[string]string{"blobs/" + rt.Layers[0].Digest.Algorithm + "/" + rt.Layers[0].Digest.Hex: "short"}),
		"a path outside blobs":              tarOf(t, map[string]string{"../etc/passwd": "x"}),
	} {
		if err := readBlobs(ctx, bytes.NewReader(blobs), ost, []Package{rt}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Without a payload, a package the node lacks is an error naming it.
	b2, _ := newBootstrap(t.TempDir(), data, "")
	if err := b2.Execute(ctx); err == nil || !strings.Contains(err.Error(), "was not sent") {
		t.Errorf("no payload: %v", err)
	}
}

// FuzzReadBlobs: whatever the bytes sent, taking them neither panics nor
// stores a blob the phase does not name.
func FuzzReadBlobs(f *testing.F) {
	f.Add(tarOf(f, map[string]string{"blobs/sha256/" + strings.Repeat("a", 64): "x"}))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		st, err := store.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		_ = readBlobs(context.Background(), bytes.NewReader(data), st, nil)
		if entries, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256")); len(entries) != 0 {
			t.Fatalf("stored %d blobs no phase named", len(entries))
		}
	})
}

func writeNode(t *testing.T, stateDir, binDir string) {
	t.Helper()
	n := config.Node{IP: net.ParseIP("10.0.0.5"), ClusterName: "c", MasterIPs: []net.IP{net.ParseIP("10.0.0.1")},
		NodePodCIDR: "10.244.5.0/24", StateDir: stateDir, RunDir: filepath.Join(stateDir, "run"), BinDir: binDir,
		PauseImage: "registry.local:5000/gravitational/pause:0.1.0"}
	data, err := node.FormatNode(n)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(stateDir, "config"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stateDir, "config", "node.yaml"), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSystem: the switch puts the new gravity in place, points the node
// config at the new runtime and sandbox image, and restarts; run again
// once the runtime runs the new version, it does not restart; rolled
// back, the old gravity and config return and the runtime restarts on
// them.
func TestSystem(t *testing.T) {
	ctx := context.Background()
	stateDir := t.TempDir()
	writeNode(t, stateDir, config.VersionBinDir("0.1.0"))
	oldCfg, _ := os.ReadFile(filepath.Join(stateDir, "config", "node.yaml"))
	dir := t.TempDir()
	dst := filepath.Join(dir, "gravity")
	os.WriteFile(dst, []byte("old"), 0o755)
	src := filepath.Join(dir, "new")
	os.WriteFile(src, []byte("new"), 0o755)
	digest, _ := fileDigest(src)
	data := map[string]string{dataDigest: digest, dataRuntime: "0.1.1", dataOldRuntime: "0.1.0", dataVersion: "0.1.1",
		dataOldVersion: "0.1.0", dataPause: "registry.local:5000/gravitational/pause:0.1.1@sha256:p"}
	var restarts []string
	s := newSystem(stateDir, "op", data, src, func(_ context.Context, path string, tg runtimeTarget, runDir string) error {
		restarts = append(restarts, tg.binDir)
		return nil
	})
	s.gravity.dst = dst
	// kubectl and helm on root's PATH follow the runtime; a foreign tool
	// stays as it was.
	s.toolsDir = t.TempDir()
	os.Symlink(filepath.Join(config.VersionBinDir("0.1.0"), "kubectl"), filepath.Join(s.toolsDir, "kubectl"))
	os.WriteFile(filepath.Join(s.toolsDir, "helm"), []byte("the host's own helm"), 0o755)
	tools := func(want string) {
		t.Helper()
		if got, _ := os.Readlink(filepath.Join(s.toolsDir, "kubectl")); got != filepath.Join(config.VersionBinDir(want), "kubectl") {
			t.Errorf("kubectl links to %s, want runtime %s", got, want)
		}
		if got, _ := os.ReadFile(filepath.Join(s.toolsDir, "helm")); string(got) != "the host's own helm" {
			t.Errorf("the host's helm was replaced")
		}
	}
	if err := s.Execute(ctx); err != nil {
		t.Fatal(err)
	}
	tools("0.1.1")
	n, err := node.LoadNode(filepath.Join(stateDir, "config", "node.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if n.BinDir != config.VersionBinDir("0.1.1") || n.PauseImage != data[dataPause] {
		t.Errorf("switched config: %s, %s", n.BinDir, n.PauseImage)
	}
	if got, _ := os.ReadFile(dst); string(got) != "new" {
		t.Errorf("gravity: %q", got)
	}
	if len(restarts) != 1 || restarts[0] != config.VersionBinDir("0.1.1") {
		t.Fatalf("restarts: %v", restarts)
	}
	// The runtime now reports the new version: a resumed phase restarts
	// nothing.
	writeStatus(t, filepath.Join(stateDir, "run"), node.Status{State: node.StateRunning, BinDir: config.VersionBinDir("0.1.1"), Version: "0.1.1"})
	if err := s.Execute(ctx); err != nil {
		t.Fatal(err)
	}
	if len(restarts) != 1 {
		t.Errorf("restarted a node that runs the new runtime: %v", restarts)
	}
	if err := s.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	tools("0.1.0")
	if got, _ := os.ReadFile(filepath.Join(stateDir, "config", "node.yaml")); !bytes.Equal(got, oldCfg) {
		t.Errorf("config after rollback:\n%s", got)
	}
	if got, _ := os.ReadFile(dst); string(got) != "old" {
		t.Errorf("gravity after rollback: %q", got)
	}
	if len(restarts) != 2 || restarts[1] != config.VersionBinDir("0.1.0") {
		t.Errorf("restarts: %v", restarts)
	}
}

// writeStatus writes a runtime status file, and holds the daemon's PID
// file as a running daemon does (this process's, locked).
func writeStatus(t *testing.T, runDir string, st node.Status) {
	t.Helper()
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(runDir, node.PIDFileName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	data, _ := json.Marshal(st)
	if err := os.WriteFile(filepath.Join(runDir, node.StatusFileName), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRuntimeSpec: the runtime versions come from this master's bin dir
// and the image's runtime package; the other masters get the image's
// other packages; an older runtime is refused.
func TestRuntimeSpec(t *testing.T) {
	ctx := context.Background()
	stateDir := t.TempDir()
	st, err := store.Open(install.Config{StateDir: stateDir}.PackagesDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{RuntimeRef("0.1.1"), RuntimeRef("0.0.9"), "gravitational.io/cluster-image:0.0.2"} {
		if _, err := st.PutPackage(ctx, ref, store.PackageMeta{Name: ref}, bytes.NewReader(tarOf(t, map[string]string{"f": ref}))); err != nil {
			t.Fatal(err)
		}
	}
	n := config.Node{BinDir: config.VersionBinDir("0.1.0"), RunDir: t.TempDir()}
	meta := func(rt string) *clusterimage.Meta {
		return &clusterimage.Meta{Packages: []clusterimage.Item{
			{Ref: "gravitational.io/cluster-image:0.0.2", Kind: clusterimage.KindPackage},
			{Ref: RuntimeRef(rt), Kind: clusterimage.KindPackage},
			{Ref: "registry.local:5000/gravitational/pause:" + rt, Kind: clusterimage.KindImage}},
			Images: []clusterimage.Item{{Ref: "registry.local:5000/gravitational/pause:" + rt, Digest: "sha256:p"}}}
	}
	var s Spec
	if err := runtimeSpec(&s, stateDir, n, meta("0.1.1")); err != nil {
		t.Fatal(err)
	}
	if !s.RuntimeChanges() || s.FromRuntime != "0.1.0" || s.ToRuntime != "0.1.1" || s.RuntimePackage.Ref != RuntimeRef("0.1.1") ||
		len(s.MasterPackages) != 1 || s.MasterPackages[0].Ref != "gravitational.io/cluster-image:0.0.2" ||
		s.Pause != "registry.local:5000/gravitational/pause:0.1.1@sha256:p" {
		t.Errorf("spec: %+v", s)
	}
	s = Spec{}
	if err := runtimeSpec(&s, stateDir, n, meta("0.0.9")); err == nil || !strings.Contains(err.Error(), "older than the cluster's 0.1.0") {
		t.Errorf("an older runtime: %v", err)
	}
	s = Spec{}
	if err := runtimeSpec(&s, stateDir, n, meta("0.2.0")); err == nil || !strings.Contains(err.Error(), "was it uploaded") {
		t.Errorf("a runtime not in the store: %v", err)
	}
}

// TestCoreDNS: the system application phase moves CoreDNS to the new
// image once it has rolled out, and back on rollback.
func TestCoreDNS(t *testing.T) {
	one := int32(1)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns"},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "coredns", Image: "old"}}}}},
		Status: appsv1.DeploymentStatus{UpdatedReplicas: 1, AvailableReplicas: 1}}
	kc, _ := kubefake.NewClient(d)
	c := cluster.Clients{Kube: kc}
	ctx := context.Background()
	image := func() string {
		img, err := runningCoreDNS(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	ex := coreDNS{clients: c, image: "new", old: "old"}
	if err := ex.Execute(ctx); err != nil || image() != "new" {
		t.Fatalf("execute: %v, image %q", err, image())
	}
	if err := ex.Rollback(ctx); err != nil || image() != "old" {
		t.Fatalf("rollback: %v, image %q", err, image())
	}
	// A cluster without CoreDNS plans no phase for it.
	empty, _ := kubefake.NewClient()
	if img, err := runningCoreDNS(ctx, cluster.Clients{Kube: empty}); err != nil || img != "" {
		t.Errorf("no CoreDNS: %q, %v", img, err)
	}
}
