package build

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/opengravity/gravity/internal/baseimage"
	"github.com/opengravity/gravity/internal/clusterimage"
	"github.com/opengravity/gravity/internal/store"
)

const exampleV1 = "../../examples/gravity101/v1/app.yaml"

// fixture is a state dir with the example's images loaded and a base image
// file in a base-images directory, as after `make` and `make example-images`.
type fixture struct {
	stateDir, baseDir, outDir string
}

func newFixture(t *testing.T, images ...string) fixture {
	t.Helper()
	f := fixture{stateDir: t.TempDir(), baseDir: t.TempDir(), outDir: t.TempDir()}
	s, err := store.Open(filepath.Join(f.stateDir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range images {
		img, err := random.Image(512, 2)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutImage(context.Background(), ref, img); err != nil {
			t.Fatal(err)
		}
	}
	gravity := filepath.Join(t.TempDir(), "gravity")
	if err := os.WriteFile(gravity, []byte("#!/bin/sh\necho gravity\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	err = baseimage.Build(context.Background(), baseimage.BuildOptions{
		Name: "gravity", Version: "0.1.0", Kubernetes: "v1.37.2", Gravity: gravity,
		Output: filepath.Join(f.baseDir, "gravity-0.1.0.tar"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f fixture) build(t *testing.T, out string, overwrite bool) (string, error) {
	t.Helper()
	var buf bytes.Buffer
	_, err := Build(context.Background(), Options{
		ManifestPath: exampleV1, OutputPath: out, Overwrite: overwrite, StateDir: f.stateDir,
		BaseImageDir: []string{f.baseDir}, Offline: true, Out: &buf,
	})
	return buf.String(), err
}

var seedImages = []string{"alpine:3.3", "quay.io/gravitational/debian-tall:stretch"}

// TestBuildExampleV1 is the walkthrough's `tele build v1/app.yaml`.
func TestBuildExampleV1(t *testing.T) {
	f := newFixture(t, seedImages...)
	out := filepath.Join(f.outDir, "cluster-image-0.0.1.tar")
	stdout, err := f.build(t, out, false)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, stdout)
	}
	for _, want := range []string{
		"* [1/6] Selecting base image version\n",
		"       Will use base image version 0.1.0 set in manifest\n",
		"* [2/6] Importing dependencies from ",
		"* [3/6] Embedding application container images\n",
		"       Detected application manifest app.yaml\n",
		"       Detected Helm chart charts/alpine\n",
		"       Vendored image alpine:3.3 for charts/alpine: Pod/alpine (container alpine)\n",
		"       Vendored image gravitational/debian-tall:stretch for install.yaml: Job/install (container install)\n",
		"* [4/6] Creating application\n",
		"* [5/6] Generating the cluster snapshot\n",
		"* [6/6] Saving the snapshot as cluster-image-0.0.1.tar\n",
		"* [6/6] Build completed in ",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	img, err := clusterimage.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, it := range append(img.Meta.Packages, img.Meta.Images...) {
		refs = append(refs, it.Ref)
	}
	for _, want := range []string{
		"gravitational.io/cluster-image:0.0.1",
		"registry.local:5000/alpine:3.3",
		"registry.local:5000/gravitational/debian-tall:stretch",
	} {
		if !slices.Contains(refs, want) {
			t.Errorf("cluster image lacks %s; has %v", want, refs)
		}
	}
	if err := clusterimage.Verify(context.Background(), out); err != nil {
		t.Errorf("verify: %v", err)
	}
	hook := appFile(t, out, "gravitational.io/cluster-image:0.0.1", "resources/install.yaml")
	if !strings.Contains(hook, "image: registry.local:5000/gravitational/debian-tall:stretch\n") {
		t.Errorf("hook image not rewritten:\n%s", hook)
	}
	chart := appFile(t, out, "gravitational.io/cluster-image:0.0.1", "resources/charts/alpine/templates/pod.yaml")
	if !strings.Contains(chart, `image: "{{ .Values.registry }}alpine:{{ .Values.version }}"`) {
		t.Errorf("chart template changed:\n%s", chart)
	}

	// A second build uses the imported base and refuses to replace the output.
	stdout, err = f.build(t, out, false)
	if err == nil || !strings.Contains(err.Error(), "already exists (use --overwrite") {
		t.Errorf("second build without --overwrite: err = %v", err)
	}
	again := filepath.Join(f.outDir, "again.tar")
	if stdout, err = f.build(t, again, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "* [2/6] Local package cache is up-to-date\n") {
		t.Errorf("second build did not use the cache:\n%s", stdout)
	}
	if fileHash(t, out) != fileHash(t, again) {
		t.Error("two builds of the same inputs differ")
	}
}

func TestBuildMissingImage(t *testing.T) {
	f := newFixture(t, "quay.io/gravitational/debian-tall:stretch")
	out := filepath.Join(f.outDir, "x.tar")
	_, err := f.build(t, out, false)
	if err == nil {
		t.Fatal("build succeeded without alpine:3.3")
	}
	for _, want := range []string{"alpine:3.3", "charts/alpine", "tele image load"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("failed build left %s", out)
	}
}

func TestBuildUnknownBaseImage(t *testing.T) {
	f := newFixture(t, seedImages...)
	var buf bytes.Buffer
	_, err := Build(context.Background(), Options{
		ManifestPath: exampleV1, OutputPath: filepath.Join(f.outDir, "x.tar"), StateDir: f.stateDir,
		BaseImageDir: []string{f.baseDir}, BaseImage: "gravity:9.9.9", Offline: true, Out: &buf,
	})
	if err == nil || !strings.Contains(err.Error(), "gravity:9.9.9") || !strings.Contains(err.Error(), "gravity:0.1.0") {
		t.Errorf("err = %v, want it to name gravity:9.9.9 and list gravity:0.1.0", err)
	}
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

// appFile reads one file of a package inside a cluster image, through the
// store the way an installer will.
func appFile(t *testing.T, image, pkg, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "unpacked")
	if err := clusterimage.Unpack(context.Background(), image, dir); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(context.Background(), filepath.Join(dir, clusterimage.PackagesDir)); err != nil {
		t.Fatal(err)
	}
	_, _, rc, err := s.Package(pkg)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("%s has no %s", pkg, name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name == name {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(data)
		}
	}
}

// TestBuildPullsFromMirror builds with an empty image store: the images come
// from a registry mirror (an in-process registry on loopback), and a second
// build finds them in the local store without asking the registry again.
func TestBuildPullsFromMirror(t *testing.T) {
	f := newFixture(t)
	var requests atomic.Int64
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		registryHandler.ServeHTTP(w, r)
	}))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	// A mirror holds Docker Hub images under library/, as Docker mirrors do.
	for _, ref := range []string{"library/alpine:3.3", "gravitational/debian-tall:stretch"} {
		img, err := random.Image(1024, 2)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(mustTag(t, host+"/"+ref), img); err != nil {
			t.Fatal(err)
		}
	}
	opts := Options{
		ManifestPath: exampleV1, OutputPath: filepath.Join(f.outDir, "a.tar"), StateDir: f.stateDir,
		BaseImageDir: []string{f.baseDir}, Mirrors: []string{host}, Insecure: []string{host},
	}
	var out bytes.Buffer
	opts.Out = &out
	if _, err := Build(context.Background(), opts); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "Pulling remote image alpine:3.3") {
		t.Errorf("no pull reported:\n%s", out.String())
	}
	before := requests.Load()
	out.Reset()
	opts.OutputPath = filepath.Join(f.outDir, "b.tar")
	if _, err := Build(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if n := requests.Load() - before; n != 0 {
		t.Errorf("second build made %d registry requests; want images from the local store", n)
	}
	if !strings.Contains(out.String(), "Using local image alpine:3.3") {
		t.Errorf("second build did not use the local store:\n%s", out.String())
	}
}

var registryHandler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))

func mustTag(t *testing.T, ref string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}
