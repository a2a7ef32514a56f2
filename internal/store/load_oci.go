package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// loadPlan is every blob an import needs, children before parents, each
// already checked against its descriptor.
type loadPlan struct {
	src       source
	blobs     []v1.Descriptor
	seen      map[v1.Hash]bool
	manifests map[v1.Hash]*v1.Manifest
	// reuse, when set, accepts a layer or config the source lacks if it
	// says the store has it (a delta image); the rest go to missing.
	reuse   func(v1.Descriptor) bool
	missing []v1.Descriptor
}

// MissingBlobsError: a delta layout lacks blobs this store does not have
// either. Blobs lists every one.
type MissingBlobsError struct{ Blobs []v1.Descriptor }

func (e *MissingBlobsError) Error() string {
	var b strings.Builder
	var total int64
	for _, d := range e.Blobs {
		total += d.Size
	}
	fmt.Fprintf(&b, "%d blobs (%d bytes) are neither in the image nor in the store:", len(e.Blobs), total)
	for _, d := range e.Blobs {
		fmt.Fprintf(&b, " %s (%d bytes)", d.Digest, d.Size)
	}
	return b.String()
}

// LoadDelta loads an OCI layout directory that may leave out layers and
// configs this store already has (a delta cluster image). Nothing is
// written when one it lacks is left out too: the error is a
// *MissingBlobsError listing them all.
func (s *Store) LoadDelta(ctx context.Context, dir string) ([]Entry, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	reuse := func(d v1.Descriptor) bool { return s.HasBlob(d.Digest, d.Size) }
	es, err := s.loadOCIWith(ctx, dirSource{root}, nil, reuse)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	return es, nil
}

func (s *Store) loadOCI(ctx context.Context, src source, tags map[v1.Hash][]string) ([]Entry, error) {
	return s.loadOCIWith(ctx, src, tags, nil)
}

func (s *Store) loadOCIWith(ctx context.Context, src source, tags map[v1.Hash][]string, reuse func(v1.Descriptor) bool) ([]Entry, error) {
	if _, err := readSource(src, "oci-layout"); err != nil {
		return nil, fmt.Errorf("not an OCI layout: %w", err)
	}
	raw, err := readSource(src, "index.json")
	if err != nil {
		return nil, err
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parse index.json: %w", err)
	}
	if len(idx.Manifests) == 0 {
		return nil, fmt.Errorf("index.json lists no images")
	}
	plan := &loadPlan{src: src, seen: map[v1.Hash]bool{}, manifests: map[v1.Hash]*v1.Manifest{}, reuse: reuse}
	var recs []record
	for _, d := range idx.Manifests {
		if err := plan.walk(ctx, d, 0); err != nil {
			return nil, err
		}
		m := plan.manifests[d.Digest]
		names, err := ociNames(d, m, tags)
		if err != nil {
			return nil, err
		}
		kind := KindImage
		if m != nil && isPackageManifest(m) {
			kind = KindPackage
		}
		desc := v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest, Platform: d.Platform, ArtifactType: d.ArtifactType}
		for _, n := range names {
			recs = append(recs, record{ref: n, kind: kind, desc: desc})
		}
	}
	if len(plan.missing) > 0 {
		return nil, &MissingBlobsError{Blobs: plan.missing}
	}
	if err := s.copyPlan(ctx, plan); err != nil {
		return nil, err
	}
	return s.commit(recs)
}

// walk checks d and everything it refers to.
func (p *loadPlan) walk(ctx context.Context, d v1.Descriptor, depth int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if depth > 8 {
		return fmt.Errorf("indexes nested too deeply")
	}
	if !validDigest(d.Digest) {
		return fmt.Errorf("unsupported digest %q", d.Digest.String())
	}
	if p.seen[d.Digest] {
		return nil
	}
	if p.reuse != nil && !isManifest(d.MediaType) && !isIndex(d.MediaType) && !p.present(d) {
		p.seen[d.Digest] = true
		if !p.reuse(d) {
			p.missing = append(p.missing, d)
		}
		return nil
	}
	if err := p.check(d); err != nil {
		return err
	}
	if isManifest(d.MediaType) || isIndex(d.MediaType) {
		if err := p.walkChildren(ctx, d, depth); err != nil {
			return err
		}
	}
	p.seen[d.Digest] = true
	p.blobs = append(p.blobs, d)
	return nil
}

// present tells whether the source has blob d (whatever its content).
func (p *loadPlan) present(d v1.Descriptor) bool {
	rc, _, err := p.src.open(blobName(d.Digest))
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	rc.Close()
	return true
}

func (p *loadPlan) check(d v1.Descriptor) error {
	got, size, err := p.src.digest(blobName(d.Digest))
	if err != nil {
		return fmt.Errorf("blob %s (%s): %w", d.Digest, d.MediaType, err)
	}
	if got != d.Digest.Hex {
		return fmt.Errorf("blob %s: %w: content hashes to sha256:%s", d.Digest, ErrDigestMismatch, got)
	}
	if size != d.Size {
		return fmt.Errorf("blob %s: %w: %d bytes, descriptor says %d", d.Digest, ErrDigestMismatch, size, d.Size)
	}
	return nil
}

func (p *loadPlan) walkChildren(ctx context.Context, d v1.Descriptor, depth int) error {
	raw, err := readSource(p.src, blobName(d.Digest))
	if err != nil {
		return err
	}
	if isManifest(d.MediaType) {
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("parse manifest %s: %w", d.Digest, err)
		}
		p.manifests[d.Digest] = m
	}
	children, err := childDescriptors(d.MediaType, raw)
	if err != nil {
		return fmt.Errorf("%s: %w", d.Digest, err)
	}
	for _, c := range children {
		if err := p.walk(ctx, c, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// copyPlan writes the checked blobs the store does not have yet; each is
// verified again while copied, in case the source changed underneath.
func (s *Store) copyPlan(ctx context.Context, p *loadPlan) error {
	for _, d := range p.blobs {
		if s.HasBlob(d.Digest, d.Size) {
			continue
		}
		rc, _, err := p.src.open(blobName(d.Digest))
		if err != nil {
			return err
		}
		err = s.WriteBlob(ctx, d.Digest, d.Size, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
