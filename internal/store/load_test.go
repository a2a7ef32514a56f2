package store

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func writeDockerArchive(t testing.TB, path string, imgs map[string]v1.Image) {
	t.Helper()
	refs := map[name.Reference]v1.Image{}
	for n, img := range imgs {
		tag, err := name.NewTag(n)
		if err != nil {
			t.Fatal(err)
		}
		refs[tag] = img
	}
	if err := tarball.MultiRefWriteToFile(path, refs); err != nil {
		t.Fatal(err)
	}
}

// writeLayout writes an OCI layout directory; an empty name writes no ref annotation.
func writeLayout(t testing.TB, dir string, imgs map[string]any) {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for n, x := range imgs {
		var opts []layout.Option
		if n != "" && !strings.HasPrefix(n, "noname") {
			opts = append(opts, layout.WithAnnotations(map[string]string{AnnotationRef: n}))
		}
		switch x := x.(type) {
		case v1.Image:
			err = p.AppendImage(x, opts...)
		case v1.ImageIndex:
			err = p.AppendIndex(x, opts...)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// tarDir packs dir into an archive at out (an OCI archive when dir is a layout).
func tarDir(t testing.TB, dir, out string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

func refsOf(es []Entry) string {
	var out []string
	for _, e := range es {
		out = append(out, e.Ref)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func TestLoadFormats(t *testing.T) {
	a, b := randomImage(t, 1024, 2), randomImage(t, 1024, 1)
	idx, _ := platformIndex(t, amd64, v1.Platform{OS: "linux", Architecture: "arm64"})
	tests := []struct {
		name     string
		make     func(t *testing.T, dir string) string
		wantRefs string
	}{
		{"docker archive", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "images.tar")
			writeDockerArchive(t, p, map[string]v1.Image{"alpine:3.3": a, "example.com/team/b:1.0": b})
			return p
		}, "alpine:3.3,example.com/team/b:1.0"},
		{"oci layout dir", func(t *testing.T, dir string) string {
			writeLayout(t, filepath.Join(dir, "l"), map[string]any{"alpine:3.3": a, "multi:1": idx})
			return filepath.Join(dir, "l")
		}, "alpine:3.3,multi:1"},
		{"oci archive", func(t *testing.T, dir string) string {
			writeLayout(t, filepath.Join(dir, "l"), map[string]any{"alpine:3.3": a, "multi:1": idx})
			tarDir(t, filepath.Join(dir, "l"), filepath.Join(dir, "oci.tar"))
			return filepath.Join(dir, "oci.tar")
		}, "alpine:3.3,multi:1"},
		{"docker 25 archive (oci layout + manifest.json)", func(t *testing.T, dir string) string {
			l := filepath.Join(dir, "l")
			writeLayout(t, l, map[string]any{"noname": a})
			cfg := mustConfigName(t, a)
			m := `[{"Config":"blobs/sha256/` + cfg.Hex + `","RepoTags":["alpine:3.3","alpine:latest"],"Layers":[]}]`
			if err := os.WriteFile(filepath.Join(l, "manifest.json"), []byte(m), 0o644); err != nil {
				t.Fatal(err)
			}
			tarDir(t, l, filepath.Join(dir, "d.tar"))
			return filepath.Join(dir, "d.tar")
		}, "alpine:3.3,alpine:latest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			es, err := s.Load(context.Background(), tt.make(t, t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			if got := refsOf(es); got != tt.wantRefs {
				t.Fatalf("refs = %s, want %s", got, tt.wantRefs)
			}
			img, _, err := s.Image("alpine:3.3", amd64)
			if err != nil {
				t.Fatal(err)
			}
			if mustConfigName(t, img) != mustConfigName(t, a) {
				t.Error("alpine:3.3 has the wrong config")
			}
			if err := validateImage(img); err != nil {
				t.Error(err)
			}
		})
	}
}

// validateImage reads every layer back and checks it against its digest.
func validateImage(img v1.Image) error {
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		h, _, err := v1.SHA256(rc)
		rc.Close()
		if err != nil {
			return err
		}
		if d, _ := l.Digest(); d != h {
			return errors.New("layer content does not match its digest")
		}
	}
	return nil
}

func TestLoadKeepsIndexWhole(t *testing.T) {
	arm := v1.Platform{OS: "linux", Architecture: "arm64"}
	idx, want := platformIndex(t, amd64, arm)
	dir := t.TempDir()
	writeLayout(t, dir, map[string]any{"multi:1": idx})
	s := newStore(t)
	es, err := s.Load(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if es[0].Digest != mustDigest(t, idx) {
		t.Errorf("entry digest %s, want the index %s", es[0].Digest, mustDigest(t, idx))
	}
	img, _, err := s.Image("multi:1", arm)
	if err != nil || mustDigest(t, img) != want[arm.String()] {
		t.Fatalf("arm64: %v", err)
	}
}

func TestLoadPackageRoundTrip(t *testing.T) {
	src := newStore(t)
	if _, err := src.PutPackage(context.Background(), "gravitational.io/app:1", PackageMeta{Name: "app", Version: "1"}, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	dst := newStore(t)
	es, err := dst.Load(context.Background(), src.Path())
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Kind != KindPackage {
		t.Fatalf("entries = %+v", es)
	}
	if _, _, rc, err := dst.Package("gravitational.io/app:1"); err != nil {
		t.Fatal(err)
	} else {
		rc.Close()
	}
}

func TestLoadUnnamed(t *testing.T) {
	dir := t.TempDir()
	writeLayout(t, filepath.Join(dir, "l"), map[string]any{"noname": randomImage(t, 100, 1)})
	s := newStore(t)
	_, err := s.Load(context.Background(), filepath.Join(dir, "l"))
	if err == nil || !strings.Contains(err.Error(), "has no name") {
		t.Fatalf("err = %v, want a no-name error", err)
	}
	// A bare tag in ref.name is not a name either.
	writeLayout(t, filepath.Join(dir, "m"), map[string]any{"3.3": randomImage(t, 100, 1)})
	if _, err := s.Load(context.Background(), filepath.Join(dir, "m")); err == nil || !strings.Contains(err.Error(), "has no name") {
		t.Fatalf("bare tag: err = %v", err)
	}
	// A docker archive without RepoTags.
	p := filepath.Join(dir, "untagged.tar")
	if err := tarball.WriteToFile(p, nil, randomImage(t, 100, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(context.Background(), p); err == nil || !strings.Contains(err.Error(), "has no name") {
		t.Fatalf("untagged docker archive: err = %v", err)
	}
	assertStoreEmpty(t, s)
}

func assertStoreEmpty(t *testing.T, s *Store) {
	t.Helper()
	es, err := s.Entries()
	if err != nil || len(es) != 0 {
		t.Errorf("entries = %v, %v; want none", es, err)
	}
	ents, _ := os.ReadDir(filepath.Join(s.Path(), "blobs", "sha256"))
	if len(ents) != 0 {
		t.Errorf("%d blobs written, want none", len(ents))
	}
}

type entry struct {
	name, link string
	typ        byte
	body       string
}

func rawTar(t testing.TB, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: typ, Mode: 0o644}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	return buf.Bytes()
}

// ociArchiveBytes is a valid single-image OCI archive, as tar bytes.
func ociArchiveBytes(t testing.TB, img v1.Image) []byte {
	t.Helper()
	dir := t.TempDir()
	writeLayout(t, filepath.Join(dir, "l"), map[string]any{"alpine:3.3": img})
	tarDir(t, filepath.Join(dir, "l"), filepath.Join(dir, "a.tar"))
	b, err := os.ReadFile(filepath.Join(dir, "a.tar"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rewriteTar copies an archive, letting edit change or drop entries.
func rewriteTar(t testing.TB, in []byte, edit func(h *tar.Header, body []byte) (*tar.Header, []byte)) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(in))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		h, body = edit(h, body)
		if h == nil {
			continue
		}
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	tw.Close()
	return buf.Bytes()
}

func TestLoadHostileArchives(t *testing.T) {
	img := randomImage(t, 4096, 2)
	good := ociArchiveBytes(t, img)
	layer := mustLayerDigest(t, img)
	goodDocker := func() []byte {
		p := filepath.Join(t.TempDir(), "d.tar")
		writeDockerArchive(t, p, map[string]v1.Image{"alpine:3.3": img})
		b, _ := os.ReadFile(p)
		return b
	}()
	tests := []struct {
		name    string
		archive []byte
		wantErr string
	}{
		{"dot-dot path", rawTar(t, []entry{{name: "../evil", body: "x"}}), "unsafe path"},
		{"nested dot-dot", rawTar(t, []entry{{name: "blobs/../../evil", body: "x"}}), "unsafe path"},
		{"absolute path", rawTar(t, []entry{{name: "/etc/evil", body: "x"}}), "unsafe path"},
		{"escaping symlink", rawTar(t, []entry{{name: "blobs/x", link: "../../etc/passwd", typ: tar.TypeSymlink}}), "outside the archive"},
		{"absolute symlink", rawTar(t, []entry{{name: "x", link: "/etc/passwd", typ: tar.TypeSymlink}}), "outside the archive"},
		{"escaping hardlink", rawTar(t, []entry{{name: "x", link: "../y", typ: tar.TypeLink}}), "outside the archive"},
		{"symlink chain", rawTar(t, []entry{{name: "f", body: "x"}, {name: "a", link: "b", typ: tar.TypeSymlink}, {name: "b", link: "f", typ: tar.TypeSymlink}}), "another link"},
		{"device node", rawTar(t, []entry{{name: "dev", typ: tar.TypeChar}}), "unsupported type"},
		{"duplicate entry", rawTar(t, []entry{{name: "a", body: "1"}, {name: "a", body: "2"}}), "appears twice"},
		{"not an image archive", rawTar(t, []entry{{name: "hello.txt", body: "hi"}}), "not a docker archive"},
		{"not a tar", []byte("this is not a tar file at all, just some text that is long enough........................................................................................................................................................................................................................................................................................................................................................................................................................................................................"), "corrupt or truncated"},
		{"truncated", good[:len(good)/2], "truncated"},
		{"corrupt layer", rewriteTar(t, good, func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if strings.HasSuffix(h.Name, layer.Hex) {
				b[len(b)/2] ^= 0xff
			}
			return h, b
		}), "digest mismatch"},
		{"missing layer", rewriteTar(t, good, func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if strings.HasSuffix(h.Name, layer.Hex) {
				return nil, nil
			}
			return h, b
		}), "does not exist"},
		{"layer swapped for a symlink to the manifest", rewriteTar(t, good, func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if strings.HasSuffix(h.Name, layer.Hex) {
				return &tar.Header{Name: h.Name, Typeflag: tar.TypeSymlink, Linkname: "../../index.json"}, nil
			}
			return h, b
		}), "digest mismatch"},
		{"corrupt docker layer", rewriteTar(t, goodDocker, func(h *tar.Header, b []byte) (*tar.Header, []byte) {
			if strings.HasSuffix(h.Name, ".tar.gz") || strings.HasSuffix(h.Name, "layer.tar") || strings.Contains(h.Name, layer.Hex) {
				b[len(b)/2] ^= 0xff
			}
			return h, b
		}), "layer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "a.tar")
			if err := os.WriteFile(p, tt.archive, 0o644); err != nil {
				t.Fatal(err)
			}
			s := newStore(t)
			_, err := s.Load(context.Background(), p)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			t.Log(err)
			assertStoreEmpty(t, s)
		})
	}
}

func mustLayerDigest(t testing.TB, img v1.Image) v1.Hash {
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m.Layers[0].Digest
}

func TestLoadLayoutDirSymlinkEscape(t *testing.T) {
	img := randomImage(t, 100, 1)
	dir := t.TempDir()
	writeLayout(t, filepath.Join(dir, "l"), map[string]any{"alpine:3.3": img})
	// Replace a blob with a symlink to an outside file with the same bytes:
	// os.Root must refuse to follow it.
	layer := mustLayerDigest(t, img)
	blob := filepath.Join(dir, "l", "blobs", "sha256", layer.Hex)
	outside := filepath.Join(dir, "outside")
	if err := os.Rename(blob, outside); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, blob); err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	_, err := s.Load(context.Background(), filepath.Join(dir, "l"))
	if err == nil {
		t.Fatal("symlink out of the layout was followed")
	}
	assertStoreEmpty(t, s)
}

func TestLoadMissingPath(t *testing.T) {
	s := newStore(t)
	_, err := s.Load(context.Background(), filepath.Join(t.TempDir(), "nope.tar"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v", err)
	}
}

// A delta layout leaves out a layer: loaded into a store that has it, it
// imports; into one that lacks it, nothing is written and the error lists
// what is missing. A full layout loads through LoadDelta as through Load.
func TestLoadDelta(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	img := randomImage(t, 100, 1)
	layer := mustLayerDigest(t, img)
	full := filepath.Join(dir, "full")
	writeLayout(t, full, map[string]any{"registry.local:5000/alpine:3.3": img})
	have := newStore(t)
	if _, err := have.LoadDelta(ctx, full); err != nil {
		t.Fatalf("LoadDelta of a full layout: %v", err)
	}

	delta := filepath.Join(dir, "delta")
	writeLayout(t, delta, map[string]any{"registry.local:5000/alpine:3.4": img})
	if err := os.Remove(filepath.Join(delta, "blobs", layer.Algorithm, layer.Hex)); err != nil {
		t.Fatal(err)
	}
	if _, err := have.Load(ctx, delta); err == nil {
		t.Error("Load accepted a layout with a blob missing")
	}
	es, err := have.LoadDelta(ctx, delta)
	if err != nil || refsOf(es) != "registry.local:5000/alpine:3.4" {
		t.Fatalf("LoadDelta into a store with the layer: %v, %v", refsOf(es), err)
	}
	if _, _, err := have.Image("registry.local:5000/alpine:3.4", v1.Platform{OS: "linux", Architecture: "amd64"}); err != nil {
		t.Errorf("the delta's image is not whole in the store: %v", err)
	}

	lacks := newStore(t)
	_, err = lacks.LoadDelta(ctx, delta)
	var missing *MissingBlobsError
	if !errors.As(err, &missing) || len(missing.Blobs) != 1 || missing.Blobs[0].Digest != layer || !strings.Contains(err.Error(), layer.String()) {
		t.Fatalf("LoadDelta into a store without the layer: %v", err)
	}
	assertStoreEmpty(t, lacks)
}
