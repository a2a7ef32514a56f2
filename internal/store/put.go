package store

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
)

// layerWorkers bounds the layers of one image written at once.
const layerWorkers = 3

// PutImage stores img (manifest, config, layers) under ref, replacing any
// entry with the same reference. Blobs already in the store are not read.
func (s *Store) PutImage(ctx context.Context, ref string, img v1.Image) (Entry, error) {
	return s.PutImageAnnotated(ctx, ref, img, nil)
}

// PutImageAnnotated is PutImage with extra annotations on the index entry.
func (s *Store) PutImageAnnotated(ctx context.Context, ref string, img v1.Image, ann map[string]string) (Entry, error) {
	if err := checkImageRef(ref); err != nil {
		return Entry{}, err
	}
	desc, err := s.writeImage(ctx, img)
	if err != nil {
		return Entry{}, fmt.Errorf("store image %s: %w", ref, err)
	}
	es, err := s.commit([]record{{ref: ref, kind: kindOf(img), desc: desc, extra: ann}})
	if err != nil {
		return Entry{}, err
	}
	return es[0], nil
}

// PutIndex stores a whole image index (every child manifest) under ref.
func (s *Store) PutIndex(ctx context.Context, ref string, idx v1.ImageIndex) (Entry, error) {
	if err := checkImageRef(ref); err != nil {
		return Entry{}, err
	}
	desc, err := s.writeIndex(ctx, idx, 0)
	if err != nil {
		return Entry{}, fmt.Errorf("store index %s: %w", ref, err)
	}
	es, err := s.commit([]record{{ref: ref, kind: KindImage, desc: desc}})
	if err != nil {
		return Entry{}, err
	}
	return es[0], nil
}

func checkImageRef(ref string) error {
	if _, err := name.ParseReference(ref); err != nil {
		return fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	return nil
}

// kindOf recognises gravity packages copied around as plain images.
func kindOf(img v1.Image) string {
	m, err := img.Manifest()
	if err == nil && isPackageManifest(m) {
		return KindPackage
	}
	return KindImage
}

func isPackageManifest(m *v1.Manifest) bool {
	return m.ArtifactType == PackageArtifactType || m.Config.MediaType == PackageConfigMediaType
}

// writeImage stores layers, then config, then manifest, so that a manifest
// in the store always has its blobs.
func (s *Store) writeImage(ctx context.Context, img v1.Image) (v1.Descriptor, error) {
	m, err := img.Manifest()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("read manifest: %w", err)
	}
	if err := s.writeLayers(ctx, img, m.Layers); err != nil {
		return v1.Descriptor{}, err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("read config: %w", err)
	}
	if err := s.WriteBlob(ctx, m.Config.Digest, m.Config.Size, bytes.NewReader(cfg)); err != nil {
		return v1.Descriptor{}, fmt.Errorf("config: %w", err)
	}
	desc, err := partial.Descriptor(img)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("manifest descriptor: %w", err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("read manifest: %w", err)
	}
	if err := s.WriteBlob(ctx, desc.Digest, desc.Size, bytes.NewReader(raw)); err != nil {
		return v1.Descriptor{}, fmt.Errorf("manifest: %w", err)
	}
	return manifestDescriptor(*desc, m), nil
}

func manifestDescriptor(d v1.Descriptor, m *v1.Manifest) v1.Descriptor {
	out := v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest, Platform: d.Platform}
	if m != nil {
		out.ArtifactType = m.ArtifactType
	}
	return out
}

func (s *Store) writeLayers(ctx context.Context, img v1.Image, layers []v1.Descriptor) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan v1.Descriptor)
	errs := make([]error, len(layers))
	var wg sync.WaitGroup
	for w := 0; w < min(layerWorkers, len(layers)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range jobs {
				if err := s.writeLayer(ctx, img, l); err != nil {
					errs[indexOf(layers, l)] = err
					cancel()
				}
			}
		}()
	}
	for _, l := range layers {
		jobs <- l
	}
	close(jobs)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func indexOf(ds []v1.Descriptor, d v1.Descriptor) int {
	for i := range ds {
		if ds[i].Digest == d.Digest {
			return i
		}
	}
	return 0
}

func (s *Store) writeLayer(ctx context.Context, img v1.Image, l v1.Descriptor) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	release, present := s.claim(l.Digest, l.Size)
	if present {
		progressFrom(ctx)(l.Size)
		return nil
	}
	defer release()
	layer, err := img.LayerByDigest(l.Digest)
	if err != nil {
		return fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	defer rc.Close()
	if _, _, err := s.writeBlob(ctx, l.Digest, l.Size, rc); err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	return nil
}

// writeIndex stores every manifest an index refers to, then the index.
func (s *Store) writeIndex(ctx context.Context, idx v1.ImageIndex, depth int) (v1.Descriptor, error) {
	if depth > 8 {
		return v1.Descriptor{}, fmt.Errorf("indexes nested too deeply")
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("read index: %w", err)
	}
	for _, c := range im.Manifests {
		if err := s.writeChild(ctx, idx, c, depth); err != nil {
			return v1.Descriptor{}, fmt.Errorf("index child %s: %w", c.Digest, err)
		}
	}
	desc, err := partial.Descriptor(idx)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("index descriptor: %w", err)
	}
	raw, err := idx.RawManifest()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("read index: %w", err)
	}
	if err := s.WriteBlob(ctx, desc.Digest, desc.Size, bytes.NewReader(raw)); err != nil {
		return v1.Descriptor{}, fmt.Errorf("index: %w", err)
	}
	return v1.Descriptor{MediaType: desc.MediaType, Size: desc.Size, Digest: desc.Digest}, nil
}

func (s *Store) writeChild(ctx context.Context, idx v1.ImageIndex, c v1.Descriptor, depth int) error {
	switch {
	case isIndex(c.MediaType):
		child, err := idx.ImageIndex(c.Digest)
		if err != nil {
			return err
		}
		_, err = s.writeIndex(ctx, child, depth+1)
		return err
	case isManifest(c.MediaType):
		img, err := idx.Image(c.Digest)
		if err != nil {
			return err
		}
		_, err = s.writeImage(ctx, img)
		return err
	default:
		return fmt.Errorf("unsupported media type %q", c.MediaType)
	}
}
