package store

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
)

func zstdBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testLayer is a compressed layer of entries, as BuildLayer makes them.
func testLayer(t testing.TB, entries []entry, mt types.MediaType) v1.Layer {
	t.Helper()
	raw := rawTar(t, entries)
	if mt == types.OCILayerZStd {
		raw = zstdBytes(t, raw)
	} else {
		raw = gzipBytes(t, raw)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }, tarball.WithMediaType(mt))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestExtractPackageAppliesLayersInOrder(t *testing.T) {
	s := newStore(t)
	layers := []v1.Layer{
		testLayer(t, []entry{{name: "bin/", typ: tar.TypeDir}, {name: "bin/kube", body: "kube v1"},
			{name: "bin/kubelet", link: "kube", typ: tar.TypeSymlink}, {name: "bin/old", body: "old"}, {name: "etc/conf", body: "c"}}, types.OCILayer),
		testLayer(t, []entry{{name: "bin/helm", body: "helm"}, {name: "bin/old", link: "helm", typ: tar.TypeSymlink},
			{name: "etc", body: "a file replacing a tree"}}, types.OCILayerZStd),
		testLayer(t, []entry{{name: "bin/kube", body: "kube v2"}, {name: "bin/kube2", link: "bin/kube", typ: tar.TypeLink}}, types.OCILayerZStd),
	}
	ref := "gravitational.io/runtime:1"
	if _, err := s.PutPackageLayers(context.Background(), ref, PackageMeta{Name: "runtime", Version: "1"}, layers); err != nil {
		t.Fatal(err)
	}
	_, _, descs, err := s.PackageLayers(ref)
	if err != nil {
		t.Fatal(err)
	}
	want := []types.MediaType{PackageLayerMediaType, PackageLayerZstdMediaType, PackageLayerZstdMediaType}
	for i, d := range descs {
		if d.MediaType != want[i] {
			t.Errorf("layer %d media type %s, want %s", i, d.MediaType, want[i])
		}
	}
	if _, _, _, err := s.Package(ref); err == nil || !strings.Contains(err.Error(), "3 layers") {
		t.Errorf("Package of a 3-layer package: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(dir, 0o755); err != nil { // an empty directory is fine
		t.Fatal(err)
	}
	if err := s.ExtractPackage(context.Background(), ref, dir); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"bin/kube": "kube v2", "bin/kubelet": "kube v2", "bin/kube2": "kube v2",
		"bin/helm": "helm", "bin/old": "helm", "etc": "a file replacing a tree"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != body {
			t.Errorf("%s = %q, %v; want %q", name, got, err, body)
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "bin/old")); err != nil || target != "helm" {
		t.Errorf("bin/old links to %q, %v", target, err)
	}
	if err := s.ExtractPackage(context.Background(), ref, dir); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("extracting over a full directory: %v", err)
	}
}

// A node leaves out what it will not run; the rest is as ExtractPackage
// writes it, and a damaged layer still fails.
func TestExtractPackageExcept(t *testing.T) {
	s := newStore(t)
	layers := []v1.Layer{testLayer(t, []entry{{name: "bin/", typ: tar.TypeDir}, {name: "bin/kube", body: "kube"},
		{name: "./bin/etcd", body: "etcd"}, {name: "bin/registry", body: "registry"}}, types.OCILayerZStd)}
	ref := "gravitational.io/runtime:1"
	if _, err := s.PutPackageLayers(context.Background(), ref, PackageMeta{Name: "runtime", Version: "1"}, layers); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "out")
	if err := s.ExtractPackageExcept(context.Background(), ref, dir, []string{"bin/etcd", "bin/registry"}); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "bin/kube")); err != nil || string(got) != "kube" {
		t.Errorf("bin/kube = %q, %v", got, err)
	}
	for _, name := range []string{"bin/etcd", "bin/registry"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s was written (%v)", name, err)
		}
	}
}

func TestPutPackageLayersRefusesUncompressed(t *testing.T) {
	s := newStore(t)
	raw := rawTar(t, []entry{{name: "a", body: "a"}})
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
		tarball.WithMediaType(types.DockerUncompressedLayer))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutPackageLayers(context.Background(), "gravitational.io/p:1", PackageMeta{}, []v1.Layer{l}); err == nil {
		t.Error("an uncompressed layer was accepted")
	}
	if _, err := s.PutPackageLayers(context.Background(), "gravitational.io/p:1", PackageMeta{}, nil); err == nil {
		t.Error("a package without layers was accepted")
	}
}

func TestExtractPackageRefusesUnsafeEntries(t *testing.T) {
	tests := map[string][]entry{
		"parent path":        {{name: "../evil", body: "x"}},
		"parent inside path": {{name: "a/../../evil", body: "x"}},
		"absolute path":      {{name: "/evil", body: "x"}},
		"absolute symlink":   {{name: "etc", link: "/etc", typ: tar.TypeSymlink}},
		"escaping symlink":   {{name: "a/b", link: "../../x", typ: tar.TypeSymlink}},
		"symlink to root":    {{name: "l", link: ".", typ: tar.TypeSymlink}, {name: "l/f", body: "x"}},
		"escaping hard link": {{name: "h", link: "../x", typ: tar.TypeLink}},
		"device":             {{name: "null", typ: tar.TypeChar}},
		"whiteout":           {{name: "bin/.wh.kube", body: ""}},
	}
	for name, entries := range tests {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			layer := testLayer(t, entries, types.OCILayerZStd)
			if _, err := s.PutPackageLayers(context.Background(), "gravitational.io/p:1", PackageMeta{}, []v1.Layer{layer}); err != nil {
				t.Fatal(err)
			}
			parent := t.TempDir()
			dir := filepath.Join(parent, "out")
			if err := s.ExtractPackage(context.Background(), "gravitational.io/p:1", dir); err == nil {
				t.Fatal("extracted")
			}
			// Nothing left behind: no target, no temporary directory, no escapee.
			if ents, _ := os.ReadDir(parent); len(ents) != 0 {
				t.Errorf("left %v", ents)
			}
		})
	}
}

// A package blob replaced on disk by other bytes that still decompress
// (the same tar, compressed differently) is refused, and nothing extracted.
func TestExtractPackageRefusesDamagedBlob(t *testing.T) {
	s := newStore(t)
	entries := []entry{{name: "bin/kube", body: "kube v1"}}
	l := testLayer(t, entries, types.OCILayer)
	ref := "gravitational.io/runtime:1"
	if _, err := s.PutPackageLayers(context.Background(), ref, PackageMeta{Name: "runtime", Version: "1"}, []v1.Layer{l}); err != nil {
		t.Fatal(err)
	}
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	path, err := s.blobPath(d)
	if err != nil {
		t.Fatal(err)
	}
	var other bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&other, gzip.NoCompression)
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(zw, rc); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	if err := os.WriteFile(path, other.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "bin")
	err = s.ExtractPackage(context.Background(), ref, dir)
	if err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("err = %v, want the damaged blob named", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("target exists after a refused extraction: %v", err)
	}
}

// TestExtractPackageRefusesBomb: a layer that decompresses to far more
// than any real one (zeros, about 1000 to 1) is refused, gzip and zstd
// alike, before it fills the disk.
func TestExtractPackageRefusesBomb(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 100 MB layer")
	}
	body := strings.Repeat("\x00", 100<<20)
	for _, mt := range []types.MediaType{types.OCILayer, types.OCILayerZStd} {
		t.Run(string(mt), func(t *testing.T) {
			s := newStore(t)
			layer := testLayer(t, []entry{{name: "bomb", body: body}}, mt)
			if size, _ := layer.Size(); size*maxLayerRatio+layerSlack >= int64(len(body)) {
				t.Fatalf("the layer is %d bytes: not a bomb by the cap's measure", size)
			}
			if _, err := s.PutPackageLayers(context.Background(), "gravitational.io/p:1", PackageMeta{}, []v1.Layer{layer}); err != nil {
				t.Fatal(err)
			}
			parent := t.TempDir()
			err := s.ExtractPackage(context.Background(), "gravitational.io/p:1", filepath.Join(parent, "out"))
			if err == nil || !strings.Contains(err.Error(), "decompression bomb") {
				t.Fatalf("err = %v", err)
			}
			if ents, _ := os.ReadDir(parent); len(ents) != 0 {
				t.Errorf("left %v", ents)
			}
		})
	}
	// The cap itself: ratio and slack, and the absolute ceiling.
	if got := maxDecompressed(1 << 20); got != 64<<20+64<<20 {
		t.Errorf("maxDecompressed(1 MiB) = %d", got)
	}
	if got := maxDecompressed(1 << 40); got != maxLayerSize {
		t.Errorf("maxDecompressed(1 TiB) = %d", got)
	}
}
