package store

import (
	"bytes"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// find resolves ref to its index.json entry (top) and the manifest it names
// (target): the entry itself, or, for "name@sha256:…" naming one platform of
// a stored index, that child manifest.
func (s *Store) find(ref string) (top, target v1.Descriptor, err error) {
	idx, err := s.readIndex()
	if err != nil {
		return top, target, err
	}
	canon := Canonical(ref)
	for _, d := range idx.Manifests {
		if d.Annotations[AnnotationRef] == ref {
			return d, d, nil
		}
	}
	for _, d := range idx.Manifests {
		if d.Annotations[AnnotationCanonical] == canon {
			return d, d, nil
		}
	}
	dig, err := name.NewDigest(ref)
	if err != nil {
		return top, target, fmt.Errorf("%s: %w", ref, ErrNotFound)
	}
	want, err := v1.NewHash(dig.DigestStr())
	if err != nil {
		return top, target, fmt.Errorf("%s: %w", ref, err)
	}
	repo := dig.Context().Name()
	for _, d := range idx.Manifests {
		if sameRepo(d, repo) {
			if t, ok := s.findDigest(d, want); ok {
				return d, t, nil
			}
		}
	}
	return top, target, fmt.Errorf("%s: %w", ref, ErrNotFound)
}

func sameRepo(d v1.Descriptor, repo string) bool {
	r, err := name.ParseReference(d.Annotations[AnnotationRef])
	return err == nil && r.Context().Name() == repo
}

// findDigest looks for want in d and, if d is an index, among its children.
func (s *Store) findDigest(d v1.Descriptor, want v1.Hash) (v1.Descriptor, bool) {
	if d.Digest == want {
		return d, true
	}
	if !isIndex(d.MediaType) {
		return v1.Descriptor{}, false
	}
	children, err := s.children(d)
	if err != nil {
		return v1.Descriptor{}, false
	}
	for _, c := range children {
		if t, ok := s.findDigest(c, want); ok {
			return t, true
		}
	}
	return v1.Descriptor{}, false
}

// Image returns the image stored under ref (as written, canonical, or
// name@sha256:…). An index resolves to the manifest for platform p.
func (s *Store) Image(ref string, p v1.Platform) (v1.Image, Entry, error) {
	top, target, err := s.find(ref)
	if err != nil {
		return nil, Entry{}, err
	}
	if top.Annotations[AnnotationKind] == KindPackage {
		return nil, Entry{}, fmt.Errorf("%s is a gravity package, not a container image", ref)
	}
	e, err := s.entry(top)
	if err != nil {
		return nil, Entry{}, err
	}
	img, err := s.resolveImage(target, p)
	if err != nil {
		return nil, Entry{}, fmt.Errorf("image %s: %w", ref, err)
	}
	return img, e, nil
}

// resolveImage opens the image manifest d, descending into indexes by platform.
func (s *Store) resolveImage(d v1.Descriptor, p v1.Platform) (v1.Image, error) {
	for depth := 0; isIndex(d.MediaType); depth++ {
		if depth > 8 {
			return nil, fmt.Errorf("indexes nested too deeply")
		}
		child, err := s.platformChild(d, p)
		if err != nil {
			return nil, err
		}
		d = child
	}
	if !isManifest(d.MediaType) {
		return nil, fmt.Errorf("unsupported manifest media type %q", d.MediaType)
	}
	return s.openImage(d)
}

func (s *Store) platformChild(d v1.Descriptor, p v1.Platform) (v1.Descriptor, error) {
	children, err := s.children(d)
	if err != nil {
		return v1.Descriptor{}, err
	}
	var have []string
	for _, c := range children {
		if c.Platform != nil && c.Platform.Satisfies(p) {
			return c, nil
		}
		if c.Platform != nil {
			have = append(have, c.Platform.String())
		}
	}
	return v1.Descriptor{}, fmt.Errorf("no manifest for platform %s in index %s (has %v): %w", p.String(), d.Digest, have, ErrNotFound)
}

// storeImage is an image manifest whose blobs live in the store.
type storeImage struct {
	s    *Store
	desc v1.Descriptor
	raw  []byte
	m    *v1.Manifest
}

func (s *Store) openImage(d v1.Descriptor) (v1.Image, error) {
	raw, err := s.readSmallBlob(d.Digest)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parse manifest %s: %w", d.Digest, err)
	}
	return partial.CompressedToImage(&storeImage{s: s, desc: d, raw: raw, m: m})
}

func (i *storeImage) RawManifest() ([]byte, error)        { return i.raw, nil }
func (i *storeImage) MediaType() (types.MediaType, error) { return i.desc.MediaType, nil }
func (i *storeImage) Descriptor() (*v1.Descriptor, error) { d := i.desc; return &d, nil }
func (i *storeImage) RawConfigFile() ([]byte, error)      { return i.s.readSmallBlob(i.m.Config.Digest) }
func (i *storeImage) ConfigName() (v1.Hash, error)        { return i.m.Config.Digest, nil }
func (i *storeImage) Manifest() (*v1.Manifest, error)     { return i.m.DeepCopy(), nil }

func (i *storeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == i.m.Config.Digest {
		return &storeBlob{s: i.s, desc: i.m.Config}, nil
	}
	for _, l := range i.m.Layers {
		if l.Digest == h {
			return &storeBlob{s: i.s, desc: l}, nil
		}
	}
	return nil, fmt.Errorf("blob %s is not in manifest %s", h, i.desc.Digest)
}

type storeBlob struct {
	s    *Store
	desc v1.Descriptor
}

func (b *storeBlob) Digest() (v1.Hash, error)            { return b.desc.Digest, nil }
func (b *storeBlob) Size() (int64, error)                { return b.desc.Size, nil }
func (b *storeBlob) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }
func (b *storeBlob) Descriptor() (*v1.Descriptor, error) { d := b.desc; return &d, nil }

func (b *storeBlob) Compressed() (io.ReadCloser, error) {
	rc, _, err := b.s.Blob(b.desc.Digest)
	return rc, err
}
