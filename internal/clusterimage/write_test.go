package clusterimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

func TestRoundTrip(t *testing.T) {
	f := newFixture(t, 2048)
	path := f.write(t)

	img, err := Open(path)
	must(t, err)
	checkMeta(t, f, img.Meta)
	must(t, Verify(context.Background(), path))

	dir := filepath.Join(t.TempDir(), "unpacked")
	must(t, Unpack(context.Background(), path, dir))
	checkUnpackedFiles(t, f, dir)
	checkUnpackedLayout(t, f, filepath.Join(dir, PackagesDir))
}

func checkMeta(t *testing.T, f *fixture, m Meta) {
	t.Helper()
	if m.FormatVersion != FormatVersion || m.Name != "cluster-image" || m.Version != "0.0.1" ||
		m.BaseImage != "gravity:0.1.0" || m.CreatedBy != "tele 0.1.0" {
		t.Errorf("meta header = %+v", m)
	}
	if len(m.Packages) != 1 || m.Packages[0].Ref != pkgRef || m.Packages[0].Kind != KindPackage {
		t.Errorf("packages = %+v", m.Packages)
	}
	wantPlatform := map[string]string{
		"registry.local:5000/alpine:3.3": "linux/amd64",
		"registry.local:5000/nginx:1.27": "",
		"registry.local:5000/multi:1.0":  "linux/amd64,linux/arm64",
	}
	var refs []string
	for _, it := range m.Images {
		refs = append(refs, it.Ref)
		if it.Platform != wantPlatform[it.Ref] {
			t.Errorf("%s platform = %q, want %q", it.Ref, it.Platform, wantPlatform[it.Ref])
		}
		if img, ok := f.images[it.Ref]; ok {
			if want := imageSize(t, img); it.Size != want {
				t.Errorf("%s size = %d, want %d", it.Ref, it.Size, want)
			}
			d, _ := img.Digest()
			if it.Digest != d.String() {
				t.Errorf("%s digest = %s, want %s", it.Ref, it.Digest, d)
			}
		}
	}
	// Canonical order: by ref, whatever order the entries came in.
	want := []string{"registry.local:5000/alpine:3.3", "registry.local:5000/multi:1.0", "registry.local:5000/nginx:1.27"}
	if !slices.Equal(refs, want) {
		t.Errorf("image refs = %v, want %v", refs, want)
	}
}

func imageSize(t *testing.T, img v1.Image) int64 {
	m, err := img.Manifest()
	must(t, err)
	n, err := img.Size()
	must(t, err)
	n += m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

func checkUnpackedFiles(t *testing.T, f *fixture, dir string) {
	t.Helper()
	modes := map[string]os.FileMode{ManifestFile: 0o644, AppManifestFile: 0o644, ReadmeFile: 0o644,
		InstallScript: 0o755, UpgradeScript: 0o755, UploadScript: 0o755, GravityBinary: 0o755, PackagesDir: 0o755 | os.ModeDir}
	for name, mode := range modes {
		fi, err := os.Stat(filepath.Join(dir, name))
		must(t, err)
		if fi.Mode() != mode {
			t.Errorf("%s mode = %v, want %v", name, fi.Mode(), mode)
		}
	}
	app, err := os.ReadFile(filepath.Join(dir, AppManifestFile))
	must(t, err)
	if !bytes.Equal(app, f.spec().AppManifest) {
		t.Errorf("app.yaml = %q", app)
	}
	readme, err := os.ReadFile(filepath.Join(dir, ReadmeFile))
	must(t, err)
	if !strings.Contains(string(readme), "sudo ./gravity install --cloud-provider=generic") {
		t.Errorf("README lacks the install command:\n%s", readme)
	}
	// The install script runs gravity from its own directory, whatever the cwd.
	cmd := exec.Command(filepath.Join(dir, InstallScript), "--cloud-provider=generic")
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	must(t, err)
	if got := strings.TrimSpace(string(out)); got != "gravity install --cloud-provider=generic" {
		t.Errorf("install printed %q", got)
	}
	for script, want := range map[string]string{UploadScript: "gravity upload", UpgradeScript: "gravity upload\ngravity upgrade --no-wait"} {
		cmd := exec.Command(filepath.Join(dir, script), "--no-wait")
		if script == UploadScript {
			cmd = exec.Command(filepath.Join(dir, script))
		}
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != want {
			t.Errorf("%s printed %q (%v), want %q", script, got, err, want)
		}
	}
}

func checkUnpackedLayout(t *testing.T, f *fixture, dir string) {
	t.Helper()
	p, err := layout.FromPath(dir)
	must(t, err)
	idx, err := p.ImageIndex()
	must(t, err)
	im, err := idx.IndexManifest()
	must(t, err)
	if len(im.Manifests) != len(f.entries) {
		t.Fatalf("index.json has %d entries, want %d", len(im.Manifests), len(f.entries))
	}
	for _, d := range im.Manifests {
		ref := d.Annotations[AnnotationRefName]
		switch {
		case f.images[ref] != nil:
			want, _ := f.images[ref].Digest()
			img, err := idx.Image(d.Digest)
			must(t, err)
			checkImage(t, img)
			if d.Digest != want || d.Annotations[AnnotationKind] != KindImage {
				t.Errorf("%s: digest %s kind %q, want %s image", ref, d.Digest, d.Annotations[AnnotationKind], want)
			}
		case f.indexes[ref] != nil:
			want, _ := f.indexes[ref].Digest()
			child, err := idx.ImageIndex(d.Digest)
			must(t, err)
			cm, err := child.IndexManifest()
			must(t, err)
			for _, c := range cm.Manifests {
				img, err := child.Image(c.Digest)
				must(t, err)
				checkImage(t, img)
			}
			if d.Digest != want {
				t.Errorf("%s: digest %s, want %s", ref, d.Digest, want)
			}
		case ref == pkgRef:
			if d.Annotations[AnnotationKind] != KindPackage || d.Annotations["io.gravity.package.purpose"] != "app" ||
				d.ArtifactType != PackageArtifactType {
				t.Errorf("package descriptor = %+v", d)
			}
			img, err := idx.Image(d.Digest)
			must(t, err)
			m, err := img.Manifest()
			must(t, err)
			if m.ArtifactType != PackageArtifactType || len(m.Layers) != 1 {
				t.Errorf("package manifest = %+v", m)
			}
		default:
			t.Errorf("unexpected index entry %q", ref)
		}
	}
}

func TestDeterministic(t *testing.T) {
	f := newFixture(t, 1024)
	a := f.write(t)
	// Reversed entries must give the same bytes: the order is canonical.
	slices.Reverse(f.entries)
	b := f.write(t)
	ba, err := os.ReadFile(a)
	must(t, err)
	bb, err := os.ReadFile(b)
	must(t, err)
	if sha256.Sum256(ba) != sha256.Sum256(bb) {
		t.Fatal("two builds from the same inputs differ")
	}
	for _, e := range readEntries(t, a) {
		h := e.hdr
		if !h.ModTime.Equal(DefaultModTime) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" ||
			h.Format != tar.FormatUSTAR {
			t.Errorf("%s: mtime %v uid %d gid %d uname %q gname %q format %v", h.Name, h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname, h.Format)
		}
	}
}

func TestSourceDateEpoch(t *testing.T) {
	f := newFixture(t, 128)
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	for _, e := range readEntries(t, f.write(t)) {
		if !e.hdr.ModTime.Equal(time.Unix(1700000000, 0)) {
			t.Fatalf("%s: mtime %v", e.hdr.Name, e.hdr.ModTime)
		}
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	err := Write(context.Background(), filepath.Join(t.TempDir(), "x.tar"), f.spec(), WriteOptions{})
	if err == nil || !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH") {
		t.Fatalf("err = %v, want an invalid SOURCE_DATE_EPOCH error", err)
	}
}

func TestLayoutOrder(t *testing.T) {
	f := newFixture(t, 128)
	got := names(readEntries(t, f.write(t)))
	head := []string{ManifestFile, AppManifestFile, ReadmeFile, InstallScript, UpgradeScript, UploadScript,
		GravityBinary, "packages/", OCILayoutFile, IndexFile, "packages/blobs/", "packages/blobs/sha256/"}
	if !slices.Equal(got[:len(head)], head) {
		t.Fatalf("head = %v, want %v", got[:len(head)], head)
	}
	blobs := got[len(head):]
	if !slices.IsSorted(blobs) || len(blobs) == 0 {
		t.Fatalf("blobs not sorted: %v", blobs)
	}
}

func TestDedupe(t *testing.T) {
	f := newFixture(t, 512)
	base := f.images["registry.local:5000/alpine:3.3"]
	extra, err := random.Layer(256, "application/vnd.docker.image.rootfs.diff.tar.gzip")
	must(t, err)
	derived, err := mutate.AppendLayers(base, extra)
	must(t, err)
	f.addImage(t, "registry.local:5000/derived:1", derived)
	path := f.write(t)
	must(t, Verify(context.Background(), path))

	layers, err := base.Layers()
	must(t, err)
	shared, err := layers[0].Digest()
	must(t, err)
	count := 0
	for _, n := range names(readEntries(t, path)) {
		if n == BlobsSHA256+"/"+shared.Hex {
			count++
		}
	}
	if count != 1 {
		t.Fatalf("shared layer appears %d times, want 1", count)
	}
}

func TestOverwrite(t *testing.T) {
	f := newFixture(t, 128)
	path := filepath.Join(t.TempDir(), "cluster-image-0.0.1.tar")
	must(t, os.WriteFile(path, []byte("old"), 0o644))
	err := Write(context.Background(), path, f.spec(), WriteOptions{})
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "cluster-image-0.0.1.tar already exists (use --overwrite to replace it)") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatal("refused write changed the file")
	}
	must(t, Write(context.Background(), path, f.spec(), WriteOptions{Overwrite: true}))
	must(t, Verify(context.Background(), path))
	if got := listDir(t, filepath.Dir(path)); !slices.Equal(got, []string{"cluster-image-0.0.1.tar"}) {
		t.Fatalf("dir = %v", got)
	}
}

func TestWriteToDirectoryRefused(t *testing.T) {
	f := newFixture(t, 128)
	dir := t.TempDir()
	err := Write(context.Background(), dir, f.spec(), WriteOptions{Overwrite: true})
	if err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("err = %v", err)
	}
}

func TestCancelMidWrite(t *testing.T) {
	f := newFixture(t, 64<<10)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls int
	opts := WriteOptions{Progress: func(done, total int64) {
		calls++
		if done > total/2 {
			cancel()
		}
	}}
	err := Write(ctx, filepath.Join(dir, "out.tar"), f.spec(), opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if calls == 0 {
		t.Fatal("progress never called")
	}
	if got := listDir(t, dir); len(got) != 0 {
		t.Fatalf("cancelled write left %v", got)
	}
}

// failingWriter simulates a disk that fills up after n bytes.
type failingWriter struct {
	w io.Writer
	n int64
}

func (f *failingWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > f.n {
		n, _ := f.w.Write(p[:f.n])
		f.n = 0
		return n, syscall.ENOSPC
	}
	f.n -= int64(len(p))
	return f.w.Write(p)
}

func TestFailingWriterLeavesNothing(t *testing.T) {
	f := newFixture(t, 64<<10)
	fi, err := os.Stat(f.write(t))
	must(t, err)
	size := fi.Size()
	for _, limit := range []int64{0, 700, size / 2, size - 1} {
		testHookWriter = func(w io.Writer) io.Writer { return &failingWriter{w: w, n: limit} }
		dir := t.TempDir()
		err := Write(context.Background(), filepath.Join(dir, "out.tar"), f.spec(), WriteOptions{})
		testHookWriter = nil
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("limit %d: err = %v, want ENOSPC", limit, err)
		}
		if got := listDir(t, dir); len(got) != 0 {
			t.Errorf("limit %d: failed write left %v", limit, got)
		}
	}
}

// lyingSource corrupts what a real source returns for one blob.
type lyingSource struct {
	BlobSource
	target v1.Hash
	lie    func(b []byte) ([]byte, int64)
}

func (s lyingSource) Blob(h v1.Hash) (io.ReadCloser, int64, error) {
	rc, n, err := s.BlobSource.Blob(h)
	if err != nil || h != s.target {
		return rc, n, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, 0, err
	}
	b, n = s.lie(b)
	return io.NopCloser(bytes.NewReader(b)), n, nil
}

func TestLyingSource(t *testing.T) {
	f := newFixture(t, 4096)
	img := f.images["registry.local:5000/nginx:1.27"]
	layers, err := img.Layers()
	must(t, err)
	layer, err := layers[1].Digest()
	must(t, err)
	mf, err := img.Digest()
	must(t, err)
	flip := func(b []byte) ([]byte, int64) {
		b = bytes.Clone(b)
		b[len(b)/2] ^= 1
		return b, int64(len(b))
	}
	tests := []struct {
		name   string
		target v1.Hash
		lie    func([]byte) ([]byte, int64)
		want   string
	}{
		{"flipped layer byte", layer, flip, "digest mismatch for blob " + layer.String() + " (ref registry.local:5000/nginx:1.27)"},
		{"flipped manifest byte", mf, flip, "digest mismatch for blob " + mf.String()},
		{"short layer", layer, func(b []byte) ([]byte, int64) { return b[:len(b)-1], int64(len(b)) }, "content ended"},
		{"long layer", layer, func(b []byte) ([]byte, int64) { return append(b, 'x'), int64(len(b)) }, "longer than"},
		{"wrong size", layer, func(b []byte) ([]byte, int64) { return b, int64(len(b)) + 1 }, "source has"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := f.spec()
			spec.Source = lyingSource{BlobSource: f.src, target: tc.target, lie: tc.lie}
			dir := t.TempDir()
			err := Write(context.Background(), filepath.Join(dir, "out.tar"), spec, WriteOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if got := listDir(t, dir); len(got) != 0 {
				t.Fatalf("failed write left %v", got)
			}
		})
	}
}

func TestSpecValidation(t *testing.T) {
	f := newFixture(t, 128)
	tests := []struct {
		name   string
		mutate func(*Spec)
		want   string
	}{
		{"no name", func(s *Spec) { s.Name = "" }, "name is empty"},
		{"no version", func(s *Spec) { s.Version = "" }, "version is empty"},
		{"no app manifest", func(s *Spec) { s.AppManifest = nil }, "app manifest is empty"},
		{"no gravity", func(s *Spec) { s.GravityBinary = "" }, "no gravity binary"},
		{"missing gravity", func(s *Spec) { s.GravityBinary = "/nonexistent/gravity" }, "opening gravity binary"},
		{"no source", func(s *Spec) { s.Source = nil }, "without a blob source"},
		{"bad kind", func(s *Spec) { s.Entries = []Entry{{Ref: "x", Kind: "chart", Descriptor: f.entries[0].Descriptor}} }, "neither"},
		{"empty ref", func(s *Spec) { s.Entries = []Entry{{Kind: KindImage, Descriptor: f.entries[0].Descriptor}} }, "empty ref"},
		{"duplicate ref", func(s *Spec) { s.Entries = []Entry{f.entries[0], f.entries[0]} }, "listed twice"},
		{"missing blob", func(s *Spec) {
			d := f.entries[0].Descriptor
			d.Digest.Hex = strings.Repeat("0", 64)
			s.Entries = []Entry{{Ref: "x", Kind: KindImage, Descriptor: d}}
		}, "reading blob sha256:000"},
		{"bad digest", func(s *Spec) {
			s.Entries = []Entry{{Ref: "x", Kind: KindImage, Descriptor: v1.Descriptor{MediaType: "x"}}}
		}, "only sha256"},
		{"unsupported media type", func(s *Spec) {
			d := f.entries[0].Descriptor
			d.MediaType = "application/vnd.docker.distribution.manifest.v1+json"
			s.Entries = []Entry{{Ref: "x", Kind: KindImage, Descriptor: d}}
		}, "unsupported media type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := f.spec()
			tc.mutate(&spec)
			dir := t.TempDir()
			err := Write(context.Background(), filepath.Join(dir, "out.tar"), spec, WriteOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if got := listDir(t, dir); len(got) != 0 {
				t.Fatalf("failed write left %v", got)
			}
		})
	}
}

func TestNoEntries(t *testing.T) {
	f := newFixture(t, 128)
	spec := f.spec()
	spec.Entries, spec.Source = nil, nil
	path := filepath.Join(t.TempDir(), "empty.tar")
	must(t, Write(context.Background(), path, spec, WriteOptions{}))
	must(t, Verify(context.Background(), path))
	img, err := Open(path)
	must(t, err)
	if img.Meta.Packages == nil || img.Meta.Images == nil || len(img.Meta.Images) != 0 {
		t.Fatalf("meta lists = %#v %#v", img.Meta.Packages, img.Meta.Images)
	}
}

// checkImage reads every blob of an image and checks it against its digest
// (validate.Image would need go-cmp, which go.mod does not have).
func checkImage(t *testing.T, img v1.Image) {
	t.Helper()
	raw, err := img.RawManifest()
	must(t, err)
	d, err := img.Digest()
	must(t, err)
	if h, _, _ := v1.SHA256(bytes.NewReader(raw)); h != d {
		t.Errorf("manifest %s hashes to %s", d, h)
	}
	cfg, err := img.RawConfigFile()
	must(t, err)
	m, err := img.Manifest()
	must(t, err)
	if h, _, _ := v1.SHA256(bytes.NewReader(cfg)); h != m.Config.Digest {
		t.Errorf("config %s hashes to %s", m.Config.Digest, h)
	}
	layers, err := img.Layers()
	must(t, err)
	for i, l := range layers {
		rc, err := l.Compressed()
		must(t, err)
		h, n, err := v1.SHA256(rc)
		rc.Close()
		must(t, err)
		if h != m.Layers[i].Digest || n != m.Layers[i].Size {
			t.Errorf("layer %d: %s/%d, want %s/%d", i, h, n, m.Layers[i].Digest, m.Layers[i].Size)
		}
	}
}

func TestProgress(t *testing.T) {
	f := newFixture(t, 4096)
	var last, lastTotal int64
	calls := 0
	opts := WriteOptions{Progress: func(done, total int64) {
		calls++
		if done < last || total != lastTotal && calls > 1 {
			t.Fatalf("progress went from %d/%d to %d/%d", last, lastTotal, done, total)
		}
		last, lastTotal = done, total
	}}
	must(t, Write(context.Background(), filepath.Join(t.TempDir(), "out.tar"), f.spec(), opts))
	if last != lastTotal || last == 0 {
		t.Fatalf("progress ended at %d/%d", last, lastTotal)
	}
}

// An image carries tsh when its spec gives one, after gravity; one
// without it (made before tsh) still reads.
func TestTshBinary(t *testing.T) {
	f := newFixture(t, 2048)
	tsh := filepath.Join(t.TempDir(), "tsh")
	must(t, os.WriteFile(tsh, []byte("#!/bin/sh\necho tsh\n"), 0o755))
	spec := f.spec()
	spec.TshBinary = tsh
	path := filepath.Join(t.TempDir(), "with-tsh.tar")
	must(t, Write(context.Background(), path, spec, WriteOptions{}))
	must(t, Verify(context.Background(), path))
	img, err := Open(path)
	must(t, err)
	if n := len(img.Meta.Files); n != len(expectedFiles)+1 || img.Meta.Files[n-1].Name != TshBinary {
		t.Errorf("files = %+v", img.Meta.Files)
	}
	dir := filepath.Join(t.TempDir(), "unpacked")
	must(t, Unpack(context.Background(), path, dir))
	if fi, err := os.Stat(filepath.Join(dir, TshBinary)); err != nil || fi.Mode() != 0o755 {
		t.Errorf("unpacked tsh: %v %v", fi, err)
	}
	must(t, Verify(context.Background(), f.write(t)))
}
