package store

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// digestNamed matches archive files whose name is their own sha256.
var digestNamed = regexp.MustCompile(`^(?:blobs/sha256/([0-9a-f]{64})|([0-9a-f]{64})\.json)$`)

// loadDocker imports a classic docker save archive through
// go-containerregistry's tarball package, after checking every file it
// will read against the digests the archive states.
func (s *Store) loadDocker(ctx context.Context, path string, ti *tarIndex) ([]Entry, error) {
	if ti.hardlinks > 0 {
		return nil, fmt.Errorf("docker archive contains hard links, which docker save never writes")
	}
	ms, err := readDockerManifest(ti)
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("manifest.json lists no images")
	}
	opener := func() (io.ReadCloser, error) { return os.Open(path) }
	type named struct {
		img  v1.Image
		tags []string
	}
	var imgs []named
	for _, m := range ms {
		if err := checkDockerEntry(ti, m); err != nil {
			return nil, err
		}
		tag, err := name.NewTag(m.RepoTags[0])
		if err != nil {
			return nil, fmt.Errorf("image %s: invalid tag %q: %w", m.Config, m.RepoTags[0], err)
		}
		img, err := tarball.Image(opener, &tag)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", m.RepoTags[0], err)
		}
		// Computing the manifest reads every layer, so a broken layer fails here, before any write.
		if _, err := img.Manifest(); err != nil {
			return nil, fmt.Errorf("image %s: %w", m.RepoTags[0], err)
		}
		imgs = append(imgs, named{img, m.RepoTags})
	}
	var recs []record
	for _, n := range imgs {
		desc, err := s.writeImage(ctx, n.img)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", n.tags[0], err)
		}
		for _, t := range n.tags {
			recs = append(recs, record{ref: t, kind: KindImage, desc: desc})
		}
	}
	return s.commit(recs)
}

// checkDockerEntry makes sure an image of manifest.json is named, complete,
// and matches the digests its file names and config state.
func checkDockerEntry(ti *tarIndex, m dockerManifest) error {
	if len(m.RepoTags) == 0 {
		return fmt.Errorf("image %s has no name (no RepoTags in manifest.json): save it by name, e.g. docker save NAME:TAG", m.Config)
	}
	for _, t := range m.RepoTags {
		if _, err := name.NewTag(t); err != nil {
			return fmt.Errorf("image %s: invalid tag %q: %w", m.Config, t, err)
		}
	}
	files := append([]string{m.Config}, m.Layers...)
	for _, f := range files {
		if err := checkDigestNamed(ti, f); err != nil {
			return err
		}
	}
	raw, err := readSource(tarSource{ti}, path.Clean(m.Config))
	if err != nil {
		return fmt.Errorf("image %s config: %w", m.RepoTags[0], err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("image %s config: %w", m.RepoTags[0], err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("image %s: config lists %d layers, manifest.json %d", m.RepoTags[0], len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	for i, l := range m.Layers {
		if err := checkDiffID(ti, path.Clean(l), cfg.RootFS.DiffIDs[i]); err != nil {
			return fmt.Errorf("image %s: %w", m.RepoTags[0], err)
		}
	}
	return nil
}

func checkDigestNamed(ti *tarIndex, file string) error {
	clean, err := cleanName(file)
	if err != nil {
		return err
	}
	f, ok := ti.files[clean]
	if !ok {
		return fmt.Errorf("manifest.json refers to %q, which is not in the archive", file)
	}
	sub := digestNamed.FindStringSubmatch(clean)
	if sub == nil {
		return nil
	}
	want := sub[1] + sub[2]
	if f.sha256 != want {
		return fmt.Errorf("archive file %s: %w: content hashes to sha256:%s", file, ErrDigestMismatch, f.sha256)
	}
	return nil
}

// checkDiffID compares a layer (plain, gzip or zstd tar) with the config's diff_id.
func checkDiffID(ti *tarIndex, file string, diffID v1.Hash) error {
	f := ti.files[file]
	if diffID.Algorithm == "sha256" && f.sha256 == diffID.Hex {
		return nil
	}
	rc, _, err := ti.open(file)
	if err != nil {
		return err
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	zr, err := decompressor(br)
	if err != nil {
		return fmt.Errorf("layer %s: %w", file, err)
	}
	if zr == nil {
		return fmt.Errorf("layer %s: %w: content hashes to sha256:%s, config says %s", file, ErrDigestMismatch, f.sha256, diffID)
	}
	defer zr.Close()
	h := sha256.New()
	if _, err := io.Copy(h, zr); err != nil {
		return fmt.Errorf("layer %s: %w", file, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); diffID.Hex != got {
		return fmt.Errorf("layer %s: %w: uncompressed content hashes to sha256:%s, config says %s", file, ErrDigestMismatch, got, diffID)
	}
	return nil
}

// decompressor returns a reader of br's decompressed content, or nil if br
// is neither gzip nor zstd.
func decompressor(br *bufio.Reader) (io.ReadCloser, error) {
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return gzip.NewReader(br)
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return newZstdReader(br)
	}
	return nil, nil
}
