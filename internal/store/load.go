package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// annotationContainerdName is where docker save (25+) and containerd put
// the full image name; org.opencontainers.image.ref.name then holds only the tag.
const annotationContainerdName = "io.containerd.image.name"

// Load imports a docker archive (docker save), an OCI archive (a tar of an
// OCI layout) or an OCI layout directory. Every blob is checked against its
// digest and size before anything is written, so a corrupt archive leaves
// the store as it was.
func (s *Store) Load(ctx context.Context, path string) ([]Entry, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	var es []Entry
	if st.IsDir() {
		es, err = s.loadLayoutDir(ctx, path)
	} else {
		es, err = s.loadArchive(ctx, path)
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return es, nil
}

func (s *Store) loadArchive(ctx context.Context, path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ti, err := indexTar(ctx, f)
	if err != nil {
		return nil, err
	}
	switch {
	case ti.has("index.json") && ti.has("oci-layout"):
		tags, err := dockerTags(ti)
		if err != nil {
			return nil, err
		}
		return s.loadOCI(ctx, tarSource{ti}, tags)
	case ti.has("manifest.json"):
		return s.loadDocker(ctx, path, ti)
	default:
		return nil, fmt.Errorf("not a docker archive (no manifest.json) or OCI archive (no oci-layout and index.json)")
	}
}

// source is an OCI layout: a directory or an archive.
type source interface {
	open(name string) (io.ReadCloser, int64, error)
	// digest hashes a file (archives have it precomputed).
	digest(name string) (hexDigest string, size int64, err error)
}

type tarSource struct{ ti *tarIndex }

func (t tarSource) open(name string) (io.ReadCloser, int64, error) { return t.ti.open(name) }

func (t tarSource) digest(name string) (string, int64, error) {
	f, ok := t.ti.files[name]
	if !ok {
		return "", 0, fmt.Errorf("%s: %w", name, os.ErrNotExist)
	}
	return f.sha256, f.size, nil
}

// dirSource reads through an os.Root, so symlinks cannot lead outside the layout.
type dirSource struct{ root *os.Root }

func (d dirSource) open(name string) (io.ReadCloser, int64, error) {
	f, err := d.root.Open(filepath.FromSlash(name))
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is not a regular file", name)
	}
	return f, st.Size(), nil
}

func (d dirSource) digest(name string) (string, int64, error) {
	rc, _, err := d.open(name)
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func (s *Store) loadLayoutDir(ctx context.Context, dir string) ([]Entry, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	src := dirSource{root}
	if _, err := root.Stat("oci-layout"); err != nil {
		return nil, fmt.Errorf("not an OCI layout directory: %w", err)
	}
	return s.loadOCI(ctx, src, nil)
}

func readSource(src source, name string) ([]byte, error) {
	rc, _, err := src.open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(raw) > maxManifestSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxManifestSize)
	}
	return raw, nil
}

func blobName(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// dockerTags maps config digests to RepoTags from a docker archive's
// manifest.json, to name the manifests of a docker-save OCI archive as the
// user wrote them.
func dockerTags(ti *tarIndex) (map[v1.Hash][]string, error) {
	if !ti.has("manifest.json") {
		return nil, nil
	}
	ms, err := readDockerManifest(ti)
	if err != nil {
		return nil, err
	}
	tags := map[v1.Hash][]string{}
	for _, m := range ms {
		hexDigest, ok := strings.CutPrefix(m.Config, "blobs/sha256/")
		if !ok {
			continue
		}
		h := v1.Hash{Algorithm: "sha256", Hex: hexDigest}
		tags[h] = append(tags[h], m.RepoTags...)
	}
	return tags, nil
}

type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func readDockerManifest(ti *tarIndex) ([]dockerManifest, error) {
	raw, err := readSource(tarSource{ti}, "manifest.json")
	if err != nil {
		return nil, err
	}
	var ms []dockerManifest
	if err := json.Unmarshal(raw, &ms); err != nil {
		return nil, fmt.Errorf("parse manifest.json: %w", err)
	}
	return ms, nil
}

// ociNames are the references a top-level layout entry is stored under.
func ociNames(d v1.Descriptor, m *v1.Manifest, tags map[v1.Hash][]string) ([]string, error) {
	var names []string
	switch {
	case m != nil && len(tags[m.Config.Digest]) > 0:
		names = tags[m.Config.Digest]
	case d.Annotations[annotationContainerdName] != "":
		names = []string{d.Annotations[annotationContainerdName]}
	case strings.ContainsAny(d.Annotations[AnnotationRef], ":/@"):
		names = []string{d.Annotations[AnnotationRef]}
	default:
		return nil, fmt.Errorf("image %s has no name: it needs a full reference in annotation %s (e.g. skopeo copy ... oci-archive:FILE:NAME:TAG) or a docker save tag",
			d.Digest, AnnotationRef)
	}
	if m != nil && isPackageManifest(m) {
		return names, nil // package locators need not be image references
	}
	for _, n := range names {
		if _, err := name.ParseReference(n); err != nil {
			return nil, fmt.Errorf("image %s has an invalid name %q: %w", d.Digest, n, err)
		}
	}
	return names, nil
}
