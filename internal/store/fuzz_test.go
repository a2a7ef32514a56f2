package store

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// FuzzLoadArchive feeds arbitrary bytes to Load as an archive: it must never
// panic and never create anything outside the store directory.
func FuzzLoadArchive(f *testing.F) {
	img := randomImage(f, 256, 1)
	f.Add(ociArchiveBytes(f, img))
	dockerPath := filepath.Join(f.TempDir(), "d.tar")
	writeDockerArchive(f, dockerPath, map[string]v1.Image{"alpine:3.3": img})
	docker, err := os.ReadFile(dockerPath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(docker)
	f.Add(rawTar(f, []entry{{name: "../evil", body: "x"}}))
	f.Add(rawTar(f, []entry{{name: "oci-layout", body: layoutFile}, {name: "index.json", link: "oci-layout", typ: tar.TypeSymlink}}))
	f.Add(rawTar(f, []entry{{name: "manifest.json", body: `[{"Config":"c.json","RepoTags":["a:1"],"Layers":["l/layer.tar"]}]`},
		{name: "c.json", body: `{"rootfs":{"type":"layers","diff_ids":["sha256:00"]}}`}, {name: "l/layer.tar", link: "../c.json", typ: tar.TypeSymlink}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		archive := filepath.Join(dir, "in.tar")
		if err := os.WriteFile(archive, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(filepath.Join(dir, "store"))
		if err != nil {
			t.Fatal(err)
		}
		es, err := s.Load(context.Background(), archive)
		ents, _ := os.ReadDir(dir)
		if len(ents) != 2 {
			t.Fatalf("Load wrote outside the store: %v", ents)
		}
		if err == nil {
			for _, e := range es {
				if _, err := s.Descriptor(e.Ref); err != nil {
					t.Fatalf("loaded entry %s not found: %v", e.Ref, err)
				}
			}
		}
	})
}

// FuzzExtractLayer feeds arbitrary bytes to the package layer extractor:
// it must never panic, never write outside its directory and never leave a
// link pointing out of it.
func FuzzExtractLayer(f *testing.F) {
	f.Add(rawTar(f, []entry{{name: "bin/", typ: tar.TypeDir}, {name: "bin/kube", body: "k"}, {name: "bin/kubelet", link: "kube", typ: tar.TypeSymlink}}))
	f.Add(rawTar(f, []entry{{name: "l", link: "d", typ: tar.TypeSymlink}, {name: "d/", typ: tar.TypeDir}, {name: "l/f", body: "x"}}))
	f.Add(rawTar(f, []entry{{name: "a/b", link: "../../outside", typ: tar.TypeSymlink}, {name: "a/b/keep", body: "x"}}))
	f.Add(rawTar(f, []entry{{name: "h", link: "../outside/keep", typ: tar.TypeLink}}))
	f.Add(rawTar(f, []entry{{name: "f", body: "x"}, {name: "f", typ: tar.TypeDir}, {name: "f/g", link: "..", typ: tar.TypeSymlink}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		keep := filepath.Join(dir, "outside", "keep")
		if err := os.MkdirAll(filepath.Dir(keep), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keep, []byte("keep"), 0o644); err != nil {
			t.Fatal(err)
		}
		rootDir := filepath.Join(dir, "root")
		if err := os.Mkdir(rootDir, 0o755); err != nil {
			t.Fatal(err)
		}
		root, err := os.OpenRoot(rootDir)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		_ = extractLayer(context.Background(), root, bytes.NewReader(data), nil)
		checkConfined(t, dir, rootDir)
	})
}

// checkConfined: dir holds only root and the untouched outside/keep, and
// every link under root stays inside it.
func checkConfined(t *testing.T, dir, rootDir string) {
	t.Helper()
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Fatalf("extraction wrote beside its directory: %v", ents)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "outside")); len(ents) != 1 {
		t.Fatalf("extraction wrote outside its directory: %v", ents)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "outside", "keep")); err != nil || string(b) != "keep" {
		t.Fatalf("outside/keep changed: %q, %v", b, err)
	}
	filepath.WalkDir(rootDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		target, _ := os.Readlink(p)
		rel, _ := filepath.Rel(rootDir, filepath.Join(filepath.Dir(p), target))
		if filepath.IsAbs(target) || rel == ".." || strings.HasPrefix(rel, "../") {
			t.Fatalf("link %s points outside: %q", p, target)
		}
		return nil
	})
}
