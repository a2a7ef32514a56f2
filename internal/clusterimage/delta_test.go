package clusterimage

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A delta against the full image leaves out its layers (never manifests or
// configs), reads and verifies as a tarball and unpacked, and is smaller.
func TestDelta(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 4096)
	full := f.write(t)
	meta, have, err := Blobs(full)
	must(t, err)
	if meta.Version != "0.0.1" || len(have) == 0 {
		t.Fatalf("Blobs: %s, %d blobs", meta.Version, len(have))
	}

	spec := f.spec()
	spec.Version = "0.0.2"
	spec.Delta = &DeltaSpec{From: "cluster-image:0.0.1", Have: have}
	delta := filepath.Join(t.TempDir(), "cluster-image-0.0.2.tar")
	must(t, Write(ctx, delta, spec, WriteOptions{}))
	img, err := Open(delta)
	must(t, err)
	omitted := img.Meta.Omitted()
	if img.Meta.Delta == nil || img.Meta.Delta.From != "cluster-image:0.0.1" || len(omitted) == 0 {
		t.Fatalf("delta %+v", img.Meta.Delta)
	}
	// Layers are left out, manifests (which every reader walks) never.
	left := map[string]bool{}
	for _, b := range omitted {
		left[b.Digest] = true
	}
	for ref, im := range f.images {
		d, err := im.Digest()
		must(t, err)
		layers, err := im.Layers()
		must(t, err)
		for _, l := range layers {
			ld, err := l.Digest()
			must(t, err)
			if !left[ld.String()] {
				t.Errorf("%s: layer %s is in the delta", ref, ld)
			}
		}
		if left[d.String()] {
			t.Errorf("%s: manifest %s left out", ref, d)
		}
	}
	fullInfo, _ := os.Stat(full)
	deltaInfo, _ := os.Stat(delta)
	if deltaInfo.Size() >= fullInfo.Size() {
		t.Errorf("delta %d bytes, full %d", deltaInfo.Size(), fullInfo.Size())
	}
	must(t, Verify(ctx, delta))
	dir := t.TempDir()
	must(t, Unpack(ctx, delta, dir))
	if _, err := VerifyDir(ctx, dir); err != nil {
		t.Fatalf("VerifyDir of the unpacked delta: %v", err)
	}
	// A left-out blob is not a license to lose others.
	kept := filepath.Join(dir, BlobsDir, "sha256")
	entries, err := os.ReadDir(kept)
	must(t, err)
	must(t, os.Remove(filepath.Join(kept, entries[0].Name())))
	if _, err := VerifyDir(ctx, dir); err == nil {
		t.Errorf("VerifyDir with a kept blob removed: %v", err)
	}
	// A delta of nothing in common leaves nothing out.
	spec.Delta.Have = nil
	none := filepath.Join(t.TempDir(), "none.tar")
	must(t, Write(ctx, none, spec, WriteOptions{}))
	if img, err := Open(none); err != nil || len(img.Meta.Omitted()) != 0 {
		t.Errorf("delta without a base: %v, %d left out", err, len(img.Meta.Omitted()))
	}
}

func TestDeltaMetaValidation(t *testing.T) {
	img, err := Open(newFixture(t, 64).write(t))
	must(t, err)
	a := "sha256:" + strings.Repeat("a", 64)
	for name, tc := range map[string]struct {
		delta *Delta
		err   string
	}{
		"good":     {&Delta{From: "cluster-image:0.0.1", Blobs: []Blob{{Digest: a, Size: 3}}}, ""},
		"no from":  {&Delta{Blobs: []Blob{}}, "from is empty"},
		"bad hash": {&Delta{From: "x:1", Blobs: []Blob{{Digest: "sha256:zz", Size: 3}}}, "invalid or repeated blob"},
		"negative": {&Delta{From: "x:1", Blobs: []Blob{{Digest: a, Size: -1}}}, "invalid or repeated blob"},
		"repeated": {&Delta{From: "x:1", Blobs: []Blob{{Digest: a, Size: 3}, {Digest: a, Size: 3}}}, "invalid or repeated blob"},
	} {
		t.Run(name, func(t *testing.T) {
			m := img.Meta
			m.Delta = tc.delta
			raw, err := json.Marshal(m)
			must(t, err)
			_, err = parseMeta(raw)
			if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("error %v, want %q", err, tc.err)
			}
		})
	}
}
