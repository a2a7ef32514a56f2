package clusterimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// layoutSource is the BlobSource tests use: a go-containerregistry OCI
// layout on disk, like internal/store's.
type layoutSource struct{ p layout.Path }

func (s layoutSource) Blob(h v1.Hash) (io.ReadCloser, int64, error) {
	f, err := os.Open(filepath.Join(string(s.p), "blobs", h.Algorithm, h.Hex))
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// fixture is a source layout filled with images, an index and a package.
type fixture struct {
	src     layoutSource
	entries []Entry
	images  map[string]v1.Image      // by ref
	indexes map[string]v1.ImageIndex // by ref
	gravity string
}

const pkgRef = "gravitational.io/cluster-image:0.0.1"

func newFixture(t testing.TB, layerSize int64) *fixture {
	t.Helper()
	dir := t.TempDir()
	p, err := layout.Write(filepath.Join(dir, "store"), empty.Index)
	must(t, err)
	f := &fixture{src: layoutSource{p}, images: map[string]v1.Image{}, indexes: map[string]v1.ImageIndex{}}
	seed := int64(1)
	img := func() v1.Image {
		seed++
		i, err := random.Image(layerSize, 2, random.WithSource(rand.NewSource(seed)))
		must(t, err)
		return i
	}
	alpine := withPlatform(t, img(), "linux", "amd64")
	f.addImage(t, "registry.local:5000/alpine:3.3", alpine)
	f.addImage(t, "registry.local:5000/nginx:1.27", img())
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: img(), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: img(), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	f.addIndex(t, "registry.local:5000/multi:1.0", idx)
	f.addPackage(t, pkgRef, []byte("resources/app.yaml"))
	f.gravity = filepath.Join(dir, "gravity")
	// The fake node binary echoes its arguments so the install script can be run.
	must(t, os.WriteFile(f.gravity, []byte("#!/bin/sh\necho gravity \"$@\"\n"), 0o700))
	return f
}

func withPlatform(t testing.TB, img v1.Image, os, arch string) v1.Image {
	cfg, err := img.ConfigFile()
	must(t, err)
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = os, arch
	img, err = mutate.ConfigFile(img, cfg)
	must(t, err)
	return img
}

func (f *fixture) addImage(t testing.TB, ref string, img v1.Image) {
	t.Helper()
	must(t, f.src.p.AppendImage(img))
	d, err := partial.Descriptor(img)
	must(t, err)
	f.images[ref] = img
	f.entries = append(f.entries, Entry{Ref: ref, Kind: KindImage, Descriptor: *d})
}

func (f *fixture) addIndex(t testing.TB, ref string, idx v1.ImageIndex) {
	t.Helper()
	must(t, f.src.p.AppendIndex(idx))
	d, err := partial.Descriptor(idx)
	must(t, err)
	f.indexes[ref] = idx
	f.entries = append(f.entries, Entry{Ref: ref, Kind: KindImage, Descriptor: *d})
}

// addPackage stores a gravity package the way internal/store does: an OCI
// artifact manifest with a JSON config and one tar+gzip layer.
func (f *fixture) addPackage(t testing.TB, ref string, content []byte) {
	t.Helper()
	var layer bytes.Buffer
	gz := gzip.NewWriter(&layer)
	tw := tar.NewWriter(gz)
	must(t, tw.WriteHeader(&tar.Header{Name: "content", Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}))
	_, err := tw.Write(content)
	must(t, err)
	must(t, tw.Close())
	must(t, gz.Close())
	cfg := []byte(`{"name":"cluster-image","version":"0.0.1"}`)
	cfgD := f.putBlob(t, "application/vnd.gravity.package.config.v1+json", cfg)
	layerD := f.putBlob(t, "application/vnd.gravity.package.layer.v1.tar+gzip", layer.Bytes())
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: PackageArtifactType,
		Config: cfgD, Layers: []v1.Descriptor{layerD}}
	raw, err := json.Marshal(m)
	must(t, err)
	d := f.putBlob(t, types.OCIManifestSchema1, raw)
	must(t, f.src.p.AppendDescriptor(d))
	f.entries = append(f.entries, Entry{Ref: ref, Kind: KindPackage, Descriptor: d,
		Annotations: map[string]string{"io.gravity.package.purpose": "app"}})
}

func (f *fixture) putBlob(t testing.TB, mt types.MediaType, b []byte) v1.Descriptor {
	t.Helper()
	h, n, err := v1.SHA256(bytes.NewReader(b))
	must(t, err)
	must(t, f.src.p.WriteBlob(h, io.NopCloser(bytes.NewReader(b))))
	return v1.Descriptor{MediaType: mt, Size: n, Digest: h}
}

func (f *fixture) spec() Spec {
	return Spec{
		Name: "cluster-image", Version: "0.0.1", BaseImage: "gravity:0.1.0", CreatedBy: "tele 0.1.0",
		AppManifest:   []byte("apiVersion: cluster.gravitational.io/v2\nkind: Cluster\nmetadata:\n  name: cluster-image\n  resourceVersion: 0.0.1\n"),
		GravityBinary: f.gravity, Entries: f.entries, Source: f.src,
	}
}

// write builds the fixture's image into a fresh directory and returns its path.
func (f *fixture) write(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cluster-image-0.0.1.tar")
	must(t, Write(context.Background(), path, f.spec(), WriteOptions{}))
	return path
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// tarEntry is one entry of a tarball, for reading and crafting archives.
type tarEntry struct {
	hdr  tar.Header
	data []byte
}

func readEntries(t testing.TB, path string) []tarEntry {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	tr := tar.NewReader(f)
	var out []tarEntry
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		must(t, err)
		data, err := io.ReadAll(tr)
		must(t, err)
		out = append(out, tarEntry{hdr: *hdr, data: data})
	}
}

// writeEntries writes a crafted archive. When its first entry is a
// manifest.json object, its archiveSize is set to the archive's length, so
// that the crafted damage, not the length check, is what a reader meets.
func writeEntries(t testing.TB, path string, entries []tarEntry) {
	t.Helper()
	data := tarBytes(t, entries)
	var meta map[string]any
	if len(entries) > 0 && entries[0].hdr.Name == ManifestFile && json.Unmarshal(entries[0].data, &meta) == nil {
		entries = slices.Clone(entries)
		for range 8 {
			meta["archiveSize"] = len(data)
			raw, err := json.Marshal(meta)
			must(t, err)
			entries[0].data = raw
			if next := tarBytes(t, entries); len(next) != len(data) {
				data = next
				continue
			}
			data = tarBytes(t, entries)
			break
		}
	}
	must(t, os.WriteFile(path, data, 0o644))
}

func tarBytes(t testing.TB, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := e.hdr
		hdr.Size = int64(len(e.data))
		if hdr.Typeflag != tar.TypeReg {
			hdr.Size = 0
		}
		must(t, tw.WriteHeader(&hdr))
		if hdr.Typeflag == tar.TypeReg {
			_, err := tw.Write(e.data)
			must(t, err)
		}
	}
	must(t, tw.Close())
	return buf.Bytes()
}

// listDir returns the names in dir, sorted.
func listDir(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	must(t, err)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func names(entries []tarEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.hdr.Name)
	}
	return out
}
