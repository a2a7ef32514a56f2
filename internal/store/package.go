package store

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types of a gravity package: an ordinary OCI image manifest with an
// artifactType, a JSON config and one gzipped tar layer, so generic OCI code
// that copies manifest + config + layers copies packages too.
const (
	PackageArtifactType    = "application/vnd.gravity.package.v1"
	PackageConfigMediaType = "application/vnd.gravity.package.config.v1+json"
	PackageLayerMediaType  = "application/vnd.gravity.package.layer.v1.tar+gzip"
)

// PackageMeta describes a gravity package; it is the package's config blob.
type PackageMeta struct {
	Name        string            `json:"name"`
	Version     string            `json:"version"`
	Kind        string            `json:"kind,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Description string            `json:"description,omitempty"`
	Created     time.Time         `json:"created,omitzero"` // zero keeps builds reproducible
}

// PutPackage stores content (a tar, gzipped or not; gzipped here if not)
// as a package under ref. content is streamed to disk, never held in memory.
func (s *Store) PutPackage(ctx context.Context, ref string, meta PackageMeta, content io.Reader) (Entry, error) {
	if ref == "" {
		return Entry{}, fmt.Errorf("put package: empty reference")
	}
	layer, err := s.writePackageLayer(ctx, content)
	if err != nil {
		return Entry{}, fmt.Errorf("package %s: %w", ref, err)
	}
	cfgRaw, err := json.Marshal(meta)
	if err != nil {
		return Entry{}, fmt.Errorf("package %s: %w", ref, err)
	}
	cfg, err := s.putBytes(ctx, PackageConfigMediaType, cfgRaw)
	if err != nil {
		return Entry{}, fmt.Errorf("package %s config: %w", ref, err)
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  PackageArtifactType,
		Config:        cfg,
		Layers:        []v1.Descriptor{layer},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return Entry{}, fmt.Errorf("package %s: %w", ref, err)
	}
	desc, err := s.putBytes(ctx, types.OCIManifestSchema1, raw)
	if err != nil {
		return Entry{}, fmt.Errorf("package %s manifest: %w", ref, err)
	}
	desc.ArtifactType = PackageArtifactType
	es, err := s.commit([]record{{ref: ref, kind: KindPackage, desc: desc}})
	if err != nil {
		return Entry{}, err
	}
	return es[0], nil
}

func (s *Store) putBytes(ctx context.Context, mt types.MediaType, raw []byte) (v1.Descriptor, error) {
	h, n, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := s.WriteBlob(ctx, h, n, bytes.NewReader(raw)); err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Size: n, Digest: h}, nil
}

// writePackageLayer stores content gzipped. Compression uses a fixed header
// (no name, zero mtime) so equal content gives an equal digest.
func (s *Store) writePackageLayer(ctx context.Context, content io.Reader) (v1.Descriptor, error) {
	br := bufio.NewReader(content)
	magic, _ := br.Peek(2)
	src := io.Reader(br)
	if !bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		pr, pw := io.Pipe()
		go func() {
			zw := gzip.NewWriter(pw)
			_, err := io.Copy(zw, br)
			if cerr := zw.Close(); err == nil {
				err = cerr
			}
			pw.CloseWithError(err)
		}()
		defer pr.Close() // unblocks the compressor if writing fails
		src = pr
	}
	h, n, err := s.writeBlob(ctx, v1.Hash{}, -1, src)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("content: %w", err)
	}
	return v1.Descriptor{MediaType: PackageLayerMediaType, Size: n, Digest: h}, nil
}

// Package returns a package's metadata, its entry and its content as an
// uncompressed tar stream, which the caller must close.
func (s *Store) Package(ref string) (PackageMeta, Entry, io.ReadCloser, error) {
	top, _, err := s.find(ref)
	if err != nil {
		return PackageMeta{}, Entry{}, nil, err
	}
	if top.Annotations[AnnotationKind] != KindPackage {
		return PackageMeta{}, Entry{}, nil, fmt.Errorf("%s is a container image, not a gravity package", ref)
	}
	e, err := s.entry(top)
	if err != nil {
		return PackageMeta{}, Entry{}, nil, err
	}
	meta, layer, err := s.packageParts(top)
	if err != nil {
		return PackageMeta{}, Entry{}, nil, fmt.Errorf("package %s: %w", ref, err)
	}
	rc, _, err := s.Blob(layer.Digest)
	if err != nil {
		return PackageMeta{}, Entry{}, nil, fmt.Errorf("package %s: %w", ref, err)
	}
	zr, err := gzip.NewReader(rc)
	if err != nil {
		rc.Close()
		return PackageMeta{}, Entry{}, nil, fmt.Errorf("package %s content: %w", ref, err)
	}
	return meta, e, gzipReadCloser{zr, rc}, nil
}

func (s *Store) packageParts(d v1.Descriptor) (PackageMeta, v1.Descriptor, error) {
	raw, err := s.readSmallBlob(d.Digest)
	if err != nil {
		return PackageMeta{}, v1.Descriptor{}, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return PackageMeta{}, v1.Descriptor{}, fmt.Errorf("parse manifest: %w", err)
	}
	if len(m.Layers) != 1 || m.Config.MediaType != PackageConfigMediaType {
		return PackageMeta{}, v1.Descriptor{}, fmt.Errorf("manifest %s is not a gravity package", d.Digest)
	}
	cfg, err := s.readSmallBlob(m.Config.Digest)
	if err != nil {
		return PackageMeta{}, v1.Descriptor{}, err
	}
	var meta PackageMeta
	if err := json.Unmarshal(cfg, &meta); err != nil {
		return PackageMeta{}, v1.Descriptor{}, fmt.Errorf("parse package config: %w", err)
	}
	return meta, m.Layers[0], nil
}

type gzipReadCloser struct {
	*gzip.Reader
	file io.Closer
}

func (g gzipReadCloser) Close() error {
	zerr := g.Reader.Close()
	if err := g.file.Close(); err != nil {
		return err
	}
	return zerr
}
