package store

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func gzipBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPackageRoundTrip(t *testing.T) {
	content := tarBytes(t, map[string]string{"resources/app.yaml": "kind: Cluster\n"})
	meta := PackageMeta{Name: "app", Version: "0.0.1", Kind: "app", Labels: map[string]string{"purpose": "test"}}
	tests := []struct {
		name  string
		input []byte
	}{
		{"plain tar gets gzipped", content},
		{"gzipped tar kept", gzipBytes(t, content)},
		{"empty content", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			e, err := s.PutPackage(context.Background(), "gravitational.io/app:0.0.1", meta, bytes.NewReader(tt.input))
			if err != nil {
				t.Fatal(err)
			}
			if e.Kind != KindPackage || e.MediaType != types.OCIManifestSchema1 {
				t.Fatalf("entry = %+v", e)
			}
			gotMeta, e2, rc, err := s.Package("gravitational.io/app:0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			want := content
			if tt.input == nil {
				want = nil
			}
			if !bytes.Equal(got, want) {
				t.Errorf("content differs: %d bytes, want %d", len(got), len(want))
			}
			if gotMeta.Name != meta.Name || gotMeta.Labels["purpose"] != "test" || e2.Digest != e.Digest {
				t.Errorf("meta = %+v, entry %+v", gotMeta, e2)
			}
		})
	}
}

func TestPackageManifestIsGenericOCI(t *testing.T) {
	s := newStore(t)
	e, err := s.PutPackage(context.Background(), "gravitational.io/planet:7.0.1", PackageMeta{Name: "planet", Version: "7.0.1"}, strings.NewReader("data"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.readSmallBlob(e.Digest)
	if err != nil {
		t.Fatal(err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.ArtifactType != PackageArtifactType ||
		m.Config.MediaType != PackageConfigMediaType || len(m.Layers) != 1 || m.Layers[0].MediaType != PackageLayerMediaType {
		t.Fatalf("manifest = %s", raw)
	}
	for _, d := range append(m.Layers, m.Config) {
		if !s.HasBlob(d.Digest, d.Size) {
			t.Errorf("blob %s missing", d.Digest)
		}
	}
	if strings.Contains(string(raw), "created") {
		t.Errorf("zero Created should be omitted: %s", raw)
	}
	if _, _, err := s.Image("gravitational.io/planet:7.0.1", amd64); err == nil {
		t.Error("Image() returned a package")
	}
	if e.Size != int64(len(raw))+m.Config.Size+m.Layers[0].Size {
		t.Errorf("size = %d", e.Size)
	}
}

func TestPackageDeterministic(t *testing.T) {
	content := tarBytes(t, map[string]string{"a": strings.Repeat("x", 100000)})
	var digests []v1.Hash
	for i := 0; i < 2; i++ {
		s := newStore(t)
		e, err := s.PutPackage(context.Background(), "gravitational.io/a:1", PackageMeta{Name: "a", Version: "1"}, bytes.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, e.Digest)
	}
	if digests[0] != digests[1] {
		t.Errorf("digests differ: %v", digests)
	}
}

func TestPackageErrors(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if _, err := s.PutImage(ctx, "alpine:3.3", randomImage(t, 10, 1)); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.Package("alpine:3.3"); err == nil || !strings.Contains(err.Error(), "not a gravity package") {
		t.Errorf("image as package: %v", err)
	}
	if _, _, _, err := s.Package("gravitational.io/none:1"); err == nil {
		t.Error("missing package: no error")
	}
	if _, err := s.PutPackage(ctx, "", PackageMeta{}, strings.NewReader("")); err == nil {
		t.Error("empty ref accepted")
	}
}
