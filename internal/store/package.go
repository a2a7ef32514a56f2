package store

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
)

// Media types of a gravity package: an ordinary OCI image manifest with an
// artifactType, a JSON config and one or more compressed tar layers (applied
// in order), so generic OCI code that copies manifest + config + layers
// copies packages too.
const (
	PackageArtifactType    = "application/vnd.gravity.package.v1"
	PackageConfigMediaType = "application/vnd.gravity.package.config.v1+json"
	PackageLayerMediaType  = "application/vnd.gravity.package.layer.v1.tar+gzip"
	// PackageLayerZstdMediaType: the base image's runtime package, whose
	// layers are the very blobs its system images use.
	PackageLayerZstdMediaType = "application/vnd.gravity.package.layer.v1.tar+zstd"
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
	return s.putPackageManifest(ctx, ref, meta, []v1.Descriptor{layer})
}

// PutPackageLayers stores a package made of ready layers (gzip or zstd),
// applied in order when extracted. Taking v1.Layer lets a package share its
// layer blobs with container images: a blob is stored, and shipped in a
// cluster image, once however many manifests name it.
func (s *Store) PutPackageLayers(ctx context.Context, ref string, meta PackageMeta, layers []v1.Layer) (Entry, error) {
	if ref == "" {
		return Entry{}, fmt.Errorf("put package: empty reference")
	}
	if len(layers) == 0 {
		return Entry{}, fmt.Errorf("package %s: no layers", ref)
	}
	descs := make([]v1.Descriptor, len(layers))
	for i, l := range layers {
		d, err := s.putPackageLayer(ctx, l)
		if err != nil {
			return Entry{}, fmt.Errorf("package %s layer %d: %w", ref, i, err)
		}
		descs[i] = d
	}
	return s.putPackageManifest(ctx, ref, meta, descs)
}

func (s *Store) putPackageLayer(ctx context.Context, l v1.Layer) (v1.Descriptor, error) {
	mt, err := l.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	pmt, err := packageLayerType(mt)
	if err != nil {
		return v1.Descriptor{}, err
	}
	h, err := l.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	size, err := l.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer rc.Close()
	if err := s.WriteBlob(ctx, h, size, rc); err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: pmt, Size: size, Digest: h}, nil
}

// packageLayerType maps an image layer's media type to the package layer
// type with the same compression.
func packageLayerType(mt types.MediaType) (types.MediaType, error) {
	switch mt {
	case types.OCILayerZStd, PackageLayerZstdMediaType:
		return PackageLayerZstdMediaType, nil
	case types.OCILayer, types.DockerLayer, PackageLayerMediaType:
		return PackageLayerMediaType, nil
	}
	return "", fmt.Errorf("unsupported layer media type %q (want a gzip or zstd tar)", mt)
}

// PutPackageDescriptors records a package whose layer blobs are already
// stored (WriteBlob: a package fetched from another node, blob by blob).
func (s *Store) PutPackageDescriptors(ctx context.Context, ref string, meta PackageMeta, layers []v1.Descriptor) (Entry, error) {
	if ref == "" || len(layers) == 0 {
		return Entry{}, fmt.Errorf("put package %q: no reference or no layers", ref)
	}
	for i, l := range layers {
		if _, err := packageLayerType(l.MediaType); err != nil {
			return Entry{}, fmt.Errorf("package %s layer %d: %w", ref, i, err)
		}
		if !s.HasBlob(l.Digest, l.Size) {
			return Entry{}, fmt.Errorf("package %s layer %d: blob %s (%d bytes) is not stored", ref, i, l.Digest, l.Size)
		}
	}
	return s.putPackageManifest(ctx, ref, meta, layers)
}

func (s *Store) putPackageManifest(ctx context.Context, ref string, meta PackageMeta, layers []v1.Descriptor) (Entry, error) {
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
		Layers:        layers,
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

// Package returns a single-layer package's metadata, its entry and its
// content as an uncompressed tar stream, which the caller must close. A
// package of several layers is read with ExtractPackage: its layers only
// make sense applied in order.
func (s *Store) Package(ref string) (PackageMeta, Entry, io.ReadCloser, error) {
	meta, e, layers, err := s.PackageLayers(ref)
	if err != nil {
		return PackageMeta{}, Entry{}, nil, err
	}
	if len(layers) != 1 {
		return PackageMeta{}, Entry{}, nil, fmt.Errorf("package %s has %d layers: extract it (ExtractPackage)", ref, len(layers))
	}
	rc, err := s.openLayer(layers[0])
	if err != nil {
		return PackageMeta{}, Entry{}, nil, fmt.Errorf("package %s: %w", ref, err)
	}
	return meta, e, rc, nil
}

// PackageLayers returns a package's metadata, its entry and its layer
// descriptors, in the order they apply.
func (s *Store) PackageLayers(ref string) (PackageMeta, Entry, []v1.Descriptor, error) {
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
	meta, layers, err := s.packageParts(top)
	if err != nil {
		return PackageMeta{}, Entry{}, nil, fmt.Errorf("package %s: %w", ref, err)
	}
	return meta, e, layers, nil
}

func (s *Store) packageParts(d v1.Descriptor) (PackageMeta, []v1.Descriptor, error) {
	raw, err := s.readSmallBlob(d.Digest)
	if err != nil {
		return PackageMeta{}, nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return PackageMeta{}, nil, fmt.Errorf("parse manifest: %w", err)
	}
	if len(m.Layers) == 0 || m.Config.MediaType != PackageConfigMediaType {
		return PackageMeta{}, nil, fmt.Errorf("manifest %s is not a gravity package", d.Digest)
	}
	for _, l := range m.Layers {
		if l.MediaType != PackageLayerMediaType && l.MediaType != PackageLayerZstdMediaType {
			return PackageMeta{}, nil, fmt.Errorf("manifest %s: layer %s has unsupported media type %q", d.Digest, l.Digest, l.MediaType)
		}
	}
	cfg, err := s.readSmallBlob(m.Config.Digest)
	if err != nil {
		return PackageMeta{}, nil, err
	}
	var meta PackageMeta
	if err := json.Unmarshal(cfg, &meta); err != nil {
		return PackageMeta{}, nil, fmt.Errorf("parse package config: %w", err)
	}
	return meta, m.Layers, nil
}

// openLayer returns a package layer's uncompressed tar stream.
func (s *Store) openLayer(d v1.Descriptor) (io.ReadCloser, error) {
	blob, _, err := s.Blob(d.Digest)
	if err != nil {
		return nil, err
	}
	// Blobs were verified when stored, but a package is about to become
	// the binaries a node runs: a blob damaged on disk since must fail
	// the extraction, which reads each one to its end.
	rc := &verifyingReader{ReadCloser: blob, want: d.Digest, size: d.Size, h: sha256.New()}
	var zr io.ReadCloser
	if d.MediaType == PackageLayerZstdMediaType {
		zr, err = newZstdReader(rc)
	} else {
		zr, err = gzip.NewReader(rc)
	}
	if err != nil {
		rc.Close()
		return nil, fmt.Errorf("layer %s: %w", d.Digest, err)
	}
	return decompressed{&cappedReader{ReadCloser: zr, left: maxDecompressed(d.Size), digest: d.Digest}, rc}, nil
}

// A layer may decompress to at most maxLayerRatio times its size plus
// layerSlack, and never more than maxLayerSize: far more than any real
// layer (the runtime's binaries compress about 3.5 to 1), far less than a
// decompression bomb (1000 to 1 and more) would fill the disk with. zstd's
// window limit bounds the decoder's memory; this bounds its output, for
// gzip and zstd alike.
const (
	maxLayerRatio = 64
	layerSlack    = 64 << 20
	maxLayerSize  = 16 << 30
)

func maxDecompressed(compressed int64) int64 {
	return min(compressed*maxLayerRatio+layerSlack, maxLayerSize)
}

// cappedReader fails once more than its limit of bytes has come out.
type cappedReader struct {
	io.ReadCloser
	left   int64
	digest v1.Hash
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, c.err()
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.ReadCloser.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n, c.err()
	}
	return n, err
}

func (c *cappedReader) err() error {
	return fmt.Errorf("layer %s decompresses to more than %d times its size: refused as a decompression bomb", c.digest, maxLayerRatio)
}

// decompressed closes the decompressor and the blob file under it.
type decompressed struct {
	io.ReadCloser
	file io.Closer
}

func (d decompressed) Close() error {
	zerr := d.ReadCloser.Close()
	if err := d.file.Close(); err != nil {
		return err
	}
	return zerr
}

// newZstdReader decodes a layer on the calling goroutine: extraction is
// bound by the disk, not the decoder. The window limit admits what the base
// image writes (128 MiB, zstd's own default limit) and bounds the memory a
// hostile blob can make the decoder allocate.
func newZstdReader(r io.Reader) (io.ReadCloser, error) {
	zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<28))
	if err != nil {
		return nil, err
	}
	return zr.IOReadCloser(), nil
}

// verifyingReader fails the read that reaches the blob's end when its
// bytes do not have the descriptor's size and digest.
type verifyingReader struct {
	io.ReadCloser
	want v1.Hash
	size int64
	n    int64
	h    hash.Hash
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.ReadCloser.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if err == io.EOF {
		if got := hex.EncodeToString(v.h.Sum(nil)); v.n != v.size || v.want.Algorithm != "sha256" || got != v.want.Hex {
			return n, fmt.Errorf("blob %s is damaged: %d bytes with digest sha256:%s, want %d bytes", v.want, v.n, got, v.size)
		}
	}
	return n, err
}
