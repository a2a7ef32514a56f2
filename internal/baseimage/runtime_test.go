package baseimage

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/opengravity/gravity/internal/clusterimage"
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
	for _, name := range []string{"kube", "etcd", "containerd", "runc", "coredns", "helm", "pause", "busybox"} {
		p := filepath.Join(bin, name)
		if name == "pause" || name == "busybox" {
			p = filepath.Join(dir, name)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n# "+name+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("kube", filepath.Join(bin, "kubelet")); err != nil {
		t.Fatal(err)
	}
	return &Runtime{BinDir: bin, Pause: filepath.Join(dir, "pause"), Busybox: filepath.Join(dir, "busybox"), CoreDNS: "1.15.0"}
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
	tools, _, err := f.Store.Image("registry.local:5000/gravitational/hook-tools:0.1.0", v1.Platform{OS: "linux", Architecture: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	files := layerFiles(t, tools)
	for _, p := range []string{"bin/busybox", "bin/sh", "usr/local/bin/helm", "usr/local/bin/kubectl"} {
		if !files[p] {
			t.Errorf("hook tools image lacks %s (has %v)", p, files)
		}
	}
	_, _, rc, err := f.Store.Package("gravitational.io/runtime:0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if hdr.Name == "bin/kubelet" && (hdr.Typeflag != tar.TypeSymlink || hdr.Linkname != "kube") {
			t.Errorf("bin/kubelet is not a link to kube: %+v", hdr)
		}
	}
	wantNames := []string{"bin/", "bin/containerd", "bin/coredns", "bin/etcd", "bin/helm", "bin/kube", "bin/kubelet", "bin/runc"}
	if !equal(names, wantNames) {
		t.Errorf("runtime package holds %v, want %v", names, wantNames)
	}
}

func layerFiles(t *testing.T, img v1.Image) map[string]bool {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %v, %v", layers, err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]bool{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name] = true
	}
}

// equal compares two lists as sets of names.
func equal(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

func TestSystemImagesAreDeterministic(t *testing.T) {
	rt := fakeRuntime(t)
	o := BuildOptions{Version: "0.1.0", Runtime: rt}
	for _, spec := range systemImages(o) {
		a, err := BuildImage(spec, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		b, err := BuildImage(spec, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		da, _ := a.Digest()
		db, _ := b.Digest()
		if da != db {
			t.Errorf("%s: two builds differ: %s, %s", spec.Ref, da, db)
		}
	}
}
