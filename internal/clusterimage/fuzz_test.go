package clusterimage

import (
	"archive/tar"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// smallImage writes an image with one small image and one package: the
// fuzzer mutates and minimizes inputs, which is slow on big ones.
func smallImage(f *testing.F) string {
	fx := newFixture(f, 16)
	var entries []Entry
	for _, e := range fx.entries {
		if e.Ref == "registry.local:5000/alpine:3.3" || e.Kind == KindPackage {
			entries = append(entries, e)
		}
	}
	fx.entries = entries
	return fx.write(f)
}

// smallDelta is a delta of the small image's next version against it.
func smallDelta(f *testing.F, full string) []byte {
	_, have, err := Blobs(full)
	must(f, err)
	fx := newFixture(f, 16)
	spec := fx.spec()
	spec.Version, spec.Delta = "0.0.2", &DeltaSpec{From: "cluster-image:0.0.1", Have: have}
	path := filepath.Join(f.TempDir(), "delta.tar")
	must(f, Write(context.Background(), path, spec, WriteOptions{}))
	b, err := os.ReadFile(path)
	must(f, err)
	return b
}

// fuzzSeeds returns a small valid image and variants of it.
func fuzzSeeds(f *testing.F) [][]byte {
	path := smallImage(f)
	valid, err := os.ReadFile(path)
	must(f, err)
	es := readEntries(f, path)
	hostile := func(e ...tarEntry) []byte {
		p := filepath.Join(f.TempDir(), "h.tar")
		writeEntries(f, p, slices.Insert(slices.Clone(es), 2, e...))
		b, err := os.ReadFile(p)
		must(f, err)
		return b
	}
	return [][]byte{
		valid,
		smallDelta(f, path),
		valid[:len(valid)/2],
		valid[:len(valid)-1],
		append(slices.Clone(valid), 'x'),
		append(slices.Clone(valid), make([]byte, 10240)...),
		valid[:1536],
		{},
		hostile(tarEntry{hdr: tar.Header{Name: "../x", Typeflag: tar.TypeReg, Mode: 0o644}, data: []byte("x")}),
		hostile(tarEntry{hdr: tar.Header{Name: "packages/", Typeflag: tar.TypeSymlink, Linkname: "/"}}),
		hostile(tarEntry{hdr: tar.Header{Name: "app.yaml", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}}),
	}
}

func FuzzUnpack(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	// Directories are reused across runs (which are sequential within a
	// worker): creating them per run makes minimization crawl.
	base := f.TempDir()
	src := filepath.Join(base, "src", "img.tar")
	parent := filepath.Join(base, "dst")
	must(f, os.Mkdir(filepath.Dir(src), 0o755))
	must(f, os.Mkdir(parent, 0o755))
	f.Fuzz(func(t *testing.T, data []byte) {
		must(t, os.WriteFile(src, data, 0o644))
		out := filepath.Join(parent, "out")
		defer os.RemoveAll(out)
		err := Unpack(context.Background(), src, out)
		got := listDir(t, parent)
		switch {
		case err != nil && len(got) != 0:
			t.Fatalf("failed unpack (%v) left %v", err, got)
		case err == nil && !slices.Equal(got, []string{"out"}):
			t.Fatalf("unpack left %v beside its target", got)
		}
		if names := listDir(t, filepath.Dir(src)); !slices.Equal(names, []string{"img.tar"}) {
			t.Fatalf("unpack wrote beside the source: %v", names)
		}
		if err == nil {
			checkTree(t, out)
			must(t, Verify(context.Background(), src))
		}
	})
}

// checkTree fails on anything but regular files and directories.
func checkTree(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() && !d.IsDir() {
			t.Errorf("%s has type %v", path, d.Type())
		}
		return nil
	})
	must(t, err)
}

func FuzzOpen(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte("\x1f\x8b\x08"))
	path := filepath.Join(f.TempDir(), "img.tar")
	f.Fuzz(func(t *testing.T, data []byte) {
		must(t, os.WriteFile(path, data, 0o644))
		img, err := Open(path)
		var se *SizeError
		if errors.As(err, &se) && (se.Got != int64(len(data)) || se.Want == se.Got) {
			t.Fatalf("SizeError %+v for a file of %d bytes", se, len(data))
		}
		if err != nil {
			return
		}
		if img.Meta.ArchiveSize != int64(len(data)) {
			t.Fatalf("opened a file of %d bytes whose manifest records %d", len(data), img.Meta.ArchiveSize)
		}
		if img.Meta.FormatVersion != FormatVersion {
			t.Fatalf("opened format version %d", img.Meta.FormatVersion)
		}
		if err := img.Meta.validate(); err != nil {
			t.Fatalf("opened an invalid manifest: %v", err)
		}
		if _, blobs, err := Blobs(path); err == nil {
			for h, n := range blobs {
				if n < 0 || !validDigest(h.String()) {
					t.Fatalf("Blobs listed %s of %d bytes", h, n)
				}
			}
		}
	})
}
