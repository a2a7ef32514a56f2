package clusterimage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BlobSource gives the content of blobs by digest; internal/store
// implements it over the local OCI layout.
type BlobSource interface {
	Blob(h v1.Hash) (io.ReadCloser, int64, error)
}

// blobSet is the set of blobs reachable from some roots, with their sizes
// and the bytes of the small documents (manifests, configs) read on the way.
type blobSet struct {
	size map[v1.Hash]int64
	docs map[v1.Hash][]byte
}

func newBlobSet() *blobSet {
	return &blobSet{size: map[v1.Hash]int64{}, docs: map[v1.Hash][]byte{}}
}

// add records a blob, rejecting two descriptors that disagree on its size:
// one of them is lying and the tar header needs the truth.
func (s *blobSet) add(d v1.Descriptor) error {
	if err := checkDescriptor(d); err != nil {
		return err
	}
	if old, ok := s.size[d.Digest]; ok && old != d.Size {
		return fmt.Errorf("blob %s is referenced with sizes %d and %d", d.Digest, old, d.Size)
	}
	s.size[d.Digest] = d.Size
	return nil
}

// sorted returns the digests in the order blobs are written: by digest.
func (s *blobSet) sorted() []v1.Hash {
	hs := make([]v1.Hash, 0, len(s.size))
	for h := range s.size {
		hs = append(hs, h)
	}
	slices.SortFunc(hs, func(a, b v1.Hash) int { return strings.Compare(a.String(), b.String()) })
	return hs
}

func (s *blobSet) total() int64 {
	var n int64
	for _, sz := range s.size {
		n += sz
	}
	return n
}

func checkDescriptor(d v1.Descriptor) error {
	if d.Digest.Algorithm != "sha256" || len(d.Digest.Hex) != 64 || !isLowerHex(d.Digest.Hex) {
		return fmt.Errorf("unsupported digest %q: only sha256 is supported", d.Digest)
	}
	if d.Size < 0 {
		return fmt.Errorf("blob %s has negative size %d", d.Digest, d.Size)
	}
	return nil
}

func isLowerHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// docGetter returns the bytes of a manifest or config blob.
type docGetter func(d v1.Descriptor) ([]byte, error)

// maxDepth bounds index nesting; real images nest one level at most.
const maxDepth = 8

// walk adds to set every blob reachable from d. Manifests and indexes are
// parsed generically by media type so packages, images and indexes share
// one path; unknown children of an index are treated as opaque blobs.
func walk(ctx context.Context, get docGetter, d v1.Descriptor, set *blobSet, depth int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if depth > maxDepth {
		return fmt.Errorf("manifest %s: indexes nested deeper than %d", d.Digest, maxDepth)
	}
	if err := set.add(d); err != nil {
		return err
	}
	switch {
	case d.MediaType.IsIndex():
		return walkIndex(ctx, get, d, set, depth)
	case isManifest(d.MediaType):
		return walkManifest(get, d, set)
	case depth == 0:
		return fmt.Errorf("root %s has unsupported media type %q", d.Digest, d.MediaType)
	}
	return nil
}

func isManifest(mt types.MediaType) bool {
	return mt == types.OCIManifestSchema1 || mt == types.DockerManifestSchema2
}

func walkIndex(ctx context.Context, get docGetter, d v1.Descriptor, set *blobSet, depth int) error {
	raw, err := get(d)
	if err != nil {
		return err
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("parsing index %s: %w", d.Digest, err)
	}
	for _, c := range im.Manifests {
		if err := walk(ctx, get, c, set, depth+1); err != nil {
			return fmt.Errorf("index %s: %w", d.Digest, err)
		}
	}
	return nil
}

func walkManifest(get docGetter, d v1.Descriptor, set *blobSet) error {
	raw, err := get(d)
	if err != nil {
		return err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("parsing manifest %s: %w", d.Digest, err)
	}
	if err := set.add(m.Config); err != nil {
		return fmt.Errorf("manifest %s: config: %w", d.Digest, err)
	}
	for i, l := range m.Layers {
		if err := set.add(l); err != nil {
			return fmt.Errorf("manifest %s: layer %d: %w", d.Digest, i, err)
		}
	}
	return nil
}

// platformOf describes the platforms of a root: its descriptor's platform,
// the platforms of an index's children, or an image config's os/arch.
func platformOf(get docGetter, d v1.Descriptor) (string, error) {
	if d.Platform != nil {
		return d.Platform.String(), nil
	}
	raw, err := get(d)
	if err != nil {
		return "", err
	}
	if d.MediaType.IsIndex() {
		im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return "", fmt.Errorf("parsing index %s: %w", d.Digest, err)
		}
		var ps []string
		for _, c := range im.Manifests {
			if c.Platform != nil && !slices.Contains(ps, c.Platform.String()) {
				ps = append(ps, c.Platform.String())
			}
		}
		return strings.Join(ps, ","), nil
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return "", fmt.Errorf("parsing manifest %s: %w", d.Digest, err)
	}
	if !m.Config.MediaType.IsConfig() {
		return "", nil // packages and other artifacts have no platform
	}
	cfgRaw, err := get(m.Config)
	if err != nil {
		return "", err
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(cfgRaw))
	if err != nil {
		return "", fmt.Errorf("parsing config %s: %w", m.Config.Digest, err)
	}
	if cfg.OS == "" {
		return "", nil
	}
	return cfg.Platform().String(), nil
}

// sourceDocs returns a docGetter that reads documents from src once,
// checking size and digest, and caches them in set.docs.
func sourceDocs(src BlobSource, set *blobSet) docGetter {
	return func(d v1.Descriptor) ([]byte, error) {
		if b, ok := set.docs[d.Digest]; ok {
			return b, nil
		}
		b, err := readDoc(src, d)
		if err != nil {
			return nil, err
		}
		set.docs[d.Digest] = b
		return b, nil
	}
}

func readDoc(src BlobSource, d v1.Descriptor) ([]byte, error) {
	if d.Size > maxMetaSize {
		return nil, fmt.Errorf("document %s is %d bytes, more than the %d allowed", d.Digest, d.Size, maxMetaSize)
	}
	rc, n, err := src.Blob(d.Digest)
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", d.Digest, err)
	}
	defer rc.Close()
	if n != d.Size {
		return nil, fmt.Errorf("blob %s: source has %d bytes, descriptor says %d", d.Digest, n, d.Size)
	}
	b, err := io.ReadAll(io.LimitReader(rc, d.Size+1))
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", d.Digest, err)
	}
	if err := checkBytes(d, b); err != nil {
		return nil, err
	}
	return b, nil
}

func checkBytes(d v1.Descriptor, b []byte) error {
	if int64(len(b)) != d.Size {
		return fmt.Errorf("blob %s: got %d bytes, want %d", d.Digest, len(b), d.Size)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != d.Digest.Hex {
		return fmt.Errorf("digest mismatch for blob %s: %w", d.Digest, &mismatchError{got: got, want: d.Digest.Hex})
	}
	return nil
}
