package baseimage

import (
	"archive/tar"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/opengravity/gravity/internal/clusterimage"
	"github.com/opengravity/gravity/internal/store"
)

// fakeRuntime stands small executables in for the runtime binaries: what is
// under test is how they are packaged, not the binaries.
func fakeRuntime(t *testing.T) *Runtime {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kube", "etcd", "containerd", "runc", "coredns", "helm", "pause", "busybox", "helm-compat"} {
		p := filepath.Join(bin, name)
		if name == "pause" || name == "busybox" || name == "helm-compat" {
			p = filepath.Join(dir, name)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n# "+name+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("kube", filepath.Join(bin, "kubelet")); err != nil {
		t.Fatal(err)
	}
	return &Runtime{BinDir: bin, Pause: filepath.Join(dir, "pause"), Busybox: filepath.Join(dir, "busybox"), CoreDNS: "1.15.0",
		HelmCompat: filepath.Join(dir, "helm-compat")}
}

func TestBuildWithRuntime(t *testing.T) {
	rt := fakeRuntime(t)
	gravity := filepath.Join(t.TempDir(), "gravity")
	if err := os.WriteFile(gravity, []byte("gravity"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "gravity-0.1.0.tar")
	o := BuildOptions{Name: "gravity", Version: "0.1.0", Kubernetes: "v1.37.2", Gravity: gravity, Output: out, Runtime: rt}
	if err := Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if err := clusterimage.Verify(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	img, err := clusterimage.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, it := range append(img.Meta.Packages, img.Meta.Images...) {
		refs = append(refs, it.Ref)
	}
	want := []string{
		"gravitational.io/runtime:0.1.0",
		"registry.local:5000/gravitational/coredns:1.15.0",
		"registry.local:5000/gravitational/hook-tools:0.1.0",
		"registry.local:5000/gravitational/pause:0.1.0",
	}
	if !equal(refs, want) {
		t.Errorf("base image holds %v, want %v", refs, want)
	}
	if img.Meta.Description != "Base cluster image with Kubernetes v1.37.2" {
		t.Errorf("description %q", img.Meta.Description)
	}

	// Importing puts them in the store, where a cluster image build finds them.
	f := newFinder(t, filepath.Dir(out))
	base, err := f.Find("gravity", "0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if base, err = f.Import(context.Background(), base); err != nil {
		t.Fatal(err)
	}
	entries, err := f.Entries(base)
	if err != nil || len(entries) != 4 {
		t.Fatalf("entries %v, %v", entries, err)
	}
	checkSharing(t, f)
	checkRuntimePackage(t, f)
}

// checkSharing: the hook tools image is made of the runtime package's kube
// and helm layer blobs, every layer is OCI zstd, and diff_ids are right.
func checkSharing(t *testing.T, f *Finder) {
	t.Helper()
	tools, _, err := f.Store.Image("registry.local:5000/gravitational/hook-tools:0.1.0", v1.Platform{OS: "linux", Architecture: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	files := layerFiles(t, tools)
	for _, p := range []string{"bin/busybox", "bin/sh", "bin/kube", "bin/kubelet", "bin/helm", "bin/helm3", "usr/local/bin/helm", "usr/local/bin/kubectl"} {
		if !files[p] {
			t.Errorf("hook tools image lacks %s (has %v)", p, files)
		}
	}
	m, err := tools.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("hook tools manifest %s, config %s: want OCI", m.MediaType, m.Config.MediaType)
	}
	_, _, pkgLayers, err := f.Store.PackageLayers("gravitational.io/runtime:0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgLayers) != 3 || len(m.Layers) != 4 {
		t.Fatalf("runtime package has %d layers, hook tools %d; want 3 and 4", len(pkgLayers), len(m.Layers))
	}
	// kube and helm: package layers 0 and 1, image layers 1 and 2.
	for i := range 2 {
		if pkgLayers[i].Digest != m.Layers[i+1].Digest {
			t.Errorf("package layer %d is %s, hook tools layer %d is %s: not shared", i, pkgLayers[i].Digest, i+1, m.Layers[i+1].Digest)
		}
		if pkgLayers[i].MediaType != store.PackageLayerZstdMediaType {
			t.Errorf("package layer %d media type %s", i, pkgLayers[i].MediaType)
		}
	}
	checkDiffIDs(t, tools)
}

func checkDiffIDs(t *testing.T, img v1.Image) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range ls {
		if mt, _ := l.MediaType(); mt != types.OCILayerZStd {
			t.Errorf("layer %d media type %s, want %s", i, mt, types.OCILayerZStd)
		}
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		h, _, err := v1.SHA256(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if h != cf.RootFS.DiffIDs[i] {
			t.Errorf("layer %d: uncompressed content is %s, diff_id %s", i, h, cf.RootFS.DiffIDs[i])
		}
	}
}

// checkRuntimePackage extracts the runtime package as the node will.
func checkRuntimePackage(t *testing.T, f *Finder) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "runtime")
	if err := f.Store.ExtractPackage(context.Background(), "gravitational.io/runtime:0.1.0", dir); err != nil {
		t.Fatal(err)
	}
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		names = append(names, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"bin", "bin/containerd", "bin/etcd", "bin/helm", "bin/helm3", "bin/kube", "bin/kubelet", "bin/runc"}
	if !equal(names, wantNames) {
		t.Errorf("runtime package holds %v, want %v (no coredns: it runs only as a pod)", names, wantNames)
	}
	if target, err := os.Readlink(filepath.Join(dir, "bin/kubelet")); err != nil || target != "kube" {
		t.Errorf("bin/kubelet is not a link to kube: %q, %v", target, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "bin/etcd")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/etcd: %v, %v", fi, err)
	}
	// bin/helm is the Helm 2 wrapper, and upstream helm is bin/helm3 beside
	// it, where the wrapper looks.
	for name, want := range map[string]string{"bin/helm": "# helm-compat", "bin/helm3": "# helm\n"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("%s holds %q, %v; want %q", name, b, err, want)
		}
	}
}

// TestLayerSpecsWithoutHelmCompat: without the wrapper, upstream helm is
// bin/helm, as before it existed.
func TestLayerSpecsWithoutHelmCompat(t *testing.T) {
	rt := fakeRuntime(t)
	rt.HelmCompat = ""
	specs, err := layerSpecs(rt)
	if err != nil {
		t.Fatal(err)
	}
	files := specs[layerHelm].Files
	if len(files) != 1 || files[0].Path != "bin/helm" || files[0].Source != filepath.Join(rt.BinDir, "helm") {
		t.Errorf("helm layer %+v: want only the runtime's helm as bin/helm", files)
	}
}

// layerFiles lists what an image's layers hold, all layers together.
func layerFiles(t *testing.T, img v1.Image) map[string]bool {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			files[strings.TrimSuffix(hdr.Name, "/")] = true
		}
		rc.Close()
	}
	return files
}

// equal compares two lists as sets of names.
func equal(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// TestBuildIsDeterministic: two builds from the same files, in different
// work directories, give the same package and images.
func TestBuildIsDeterministic(t *testing.T) {
	rt := fakeRuntime(t)
	o := BuildOptions{Name: "gravity", Version: "0.1.0", Kubernetes: "v1.37.2", Runtime: rt}
	var digests [2][]string
	for i := range digests {
		s, err := store.Open(filepath.Join(t.TempDir(), "store"))
		if err != nil {
			t.Fatal(err)
		}
		entries, err := runtimeEntries(context.Background(), s, o, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			digests[i] = append(digests[i], e.Ref+"@"+e.Descriptor.Digest.String())
		}
	}
	if !slices.Equal(digests[0], digests[1]) || len(digests[0]) != 4 {
		t.Errorf("two builds differ:\n%v\n%v", digests[0], digests[1])
	}
}
