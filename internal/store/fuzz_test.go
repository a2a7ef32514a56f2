package store

import (
	"archive/tar"
	"context"
	"os"
	"path/filepath"
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
