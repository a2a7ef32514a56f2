package clusterimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// VerifyDir checks an unpacked cluster image in dir as Verify checks the
// tarball: manifest.json, every top-level file's size and digest, and every
// blob reachable from packages/index.json, present whole. An image cut
// short while unpacking (`tar -xf` of a truncated file leaves what it got)
// is refused here, before an installer changes anything.
func VerifyDir(ctx context.Context, dir string) (*Meta, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("not an unpacked cluster image: %w", err)
	}
	meta, err := parseMeta(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	// Sizes first: a cut tarball is told apart from a damaged file, and
	// without reading a byte of content.
	if err := checkUnpacked(dir, meta); err != nil {
		return nil, err
	}
	for _, f := range meta.Files {
		if err := checkFileDigest(ctx, filepath.Join(dir, f.Name), f.Size, f.Digest); err != nil {
			return nil, err
		}
	}
	if err := verifyLayoutDir(ctx, dir, meta); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return meta, nil
}

func verifyLayoutDir(ctx context.Context, dir string, meta *Meta) error {
	idx, err := readIndexFile(filepath.Join(dir, IndexFile))
	if err != nil {
		return err
	}
	if err := checkIndex(meta, idx); err != nil {
		return err
	}
	blobPath := func(h v1.Hash) string { return filepath.Join(dir, BlobsDir, h.Algorithm, h.Hex) }
	get := func(d v1.Descriptor) ([]byte, error) {
		if d.Size > 8<<20 {
			return nil, fmt.Errorf("manifest %s is too large (%d bytes)", d.Digest, d.Size)
		}
		if err := checkFileDigest(ctx, blobPath(d.Digest), d.Size, d.Digest.String()); err != nil {
			return nil, err
		}
		return os.ReadFile(blobPath(d.Digest))
	}
	all := newBlobSet()
	for _, d := range idx.Manifests {
		if err := walk(ctx, get, d, all, 0); err != nil {
			return err
		}
	}
	omitted := meta.omitted()
	for _, h := range all.sorted() {
		if n, ok := omitted[h]; ok && n == all.size[h] {
			if _, err := os.Stat(blobPath(h)); os.IsNotExist(err) {
				continue // left out of a delta image
			}
		}
		if err := checkFileDigest(ctx, blobPath(h), all.size[h], h.String()); err != nil {
			return err
		}
	}
	return nil
}

func readIndexFile(path string) (*v1.IndexManifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	idx, err := v1.ParseIndexManifest(io.LimitReader(f, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", IndexFile, err)
	}
	return idx, nil
}

// checkFileDigest streams path through sha256; a short file is "truncated",
// the error users of a cut download meet.
func checkFileDigest(ctx context.Context, path string, size int64, digest string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cluster image is incomplete: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx: ctx, r: f})
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if n != size {
		return fmt.Errorf("%s is truncated or damaged: %d bytes, want %d", path, n, size)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		return fmt.Errorf("%s is damaged: digest %s, want %s", path, got, digest)
	}
	return nil
}
