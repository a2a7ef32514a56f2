// Package store is tele's local content-addressed store: an OCI image layout
// in the state directory that holds container images and gravity packages.
//
// Blobs are written to a temporary file, verified against their digest and
// size, and renamed into place, so a blob file that exists is always whole.
// index.json is rewritten atomically under an flock so that concurrent
// goroutines and processes never lose each other's entries.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/opengravity/gravity/internal/atomicfile"
)

// Annotations recorded on every index.json entry.
const (
	AnnotationRef       = "org.opencontainers.image.ref.name"
	AnnotationCanonical = "io.gravity.ref.canonical"
	AnnotationKind      = "io.gravity.kind"

	KindImage   = "image"
	KindPackage = "package"
)

// ErrNotFound is returned (wrapped) when a reference or blob is not in the store.
var ErrNotFound = errors.New("not found in the local store")

const (
	layoutFile = `{"imageLayoutVersion":"1.0.0"}`
	lockName   = "index.lock"
	// maxManifestSize bounds every manifest, index and config read into memory.
	maxManifestSize = 8 << 20
)

// Store is an OCI image layout directory. It is safe for concurrent use.
type Store struct {
	dir string
	mu  sync.Mutex // serialises index.json updates within the process; flock covers other processes

	flightMu sync.Mutex
	inflight map[v1.Hash]chan struct{} // blobs being written, so concurrent writers fetch each blob once
}

// Entry is one named thing in the store.
type Entry struct {
	Ref         string // the reference as written
	Kind        string // KindImage or KindPackage
	Digest      v1.Hash
	Size        int64 // total bytes of distinct blobs: manifest(s), config(s), layers
	MediaType   types.MediaType
	Annotations map[string]string
}

// Open opens the store in dir, creating an empty layout if it is missing.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", dir, err)
	}
	s := &Store{dir: abs, inflight: map[v1.Hash]chan struct{}{}}
	if err := os.MkdirAll(filepath.Join(abs, "blobs", "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("create store: %w", err)
	}
	err = s.withLock(func() error {
		if err := ensureFile(filepath.Join(abs, "oci-layout"), []byte(layoutFile)); err != nil {
			return err
		}
		empty, _ := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}})
		return ensureFile(filepath.Join(abs, "index.json"), empty)
	})
	if err != nil {
		return nil, fmt.Errorf("create store %s: %w", abs, err)
	}
	if _, err := s.readIndex(); err != nil {
		return nil, err
	}
	return s, nil
}

// Path is the store's directory.
func (s *Store) Path() string { return s.dir }

func ensureFile(path string, data []byte) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return writeFileAtomic(path, data)
}

func writeFileAtomic(path string, data []byte) error {
	return atomicfile.WriteFile(path, data, 0o644)
}

// withLock runs fn holding both the in-process mutex and an exclusive flock
// on the store's lock file.
func (s *Store) withLock(fn func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(s.dir, lockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("open store lock: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock store: %w", err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing the file releases it anyway
	return fn()
}

func (s *Store) readIndex() (*v1.IndexManifest, error) {
	f, err := os.Open(filepath.Join(s.dir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("read store index: %w", err)
	}
	defer f.Close()
	idx, err := v1.ParseIndexManifest(io.LimitReader(f, maxManifestSize))
	if err != nil {
		return nil, fmt.Errorf("parse store index %s: %w", f.Name(), err)
	}
	return idx, nil
}

// record is one index.json entry to add or replace.
type record struct {
	ref   string
	kind  string
	desc  v1.Descriptor
	extra map[string]string
}

// commit adds recs to index.json, replacing entries with the same reference.
// Every blob recs refer to must already be in the store.
func (s *Store) commit(recs []record) ([]Entry, error) {
	descs := make([]v1.Descriptor, len(recs))
	for i, r := range recs {
		d := r.desc
		d.Annotations = map[string]string{}
		for k, v := range r.extra {
			d.Annotations[k] = v
		}
		d.Annotations[AnnotationRef] = r.ref
		d.Annotations[AnnotationCanonical] = Canonical(r.ref)
		d.Annotations[AnnotationKind] = r.kind
		d.Data = nil
		descs[i] = d
	}
	err := s.withLock(func() error {
		idx, err := s.readIndex()
		if err != nil {
			return err
		}
		for _, d := range descs {
			idx.Manifests = replaceRef(idx.Manifests, d)
		}
		raw, err := json.MarshalIndent(idx, "", "  ")
		if err != nil {
			return err
		}
		return writeFileAtomic(filepath.Join(s.dir, "index.json"), raw)
	})
	if err != nil {
		return nil, fmt.Errorf("update store index: %w", err)
	}
	out := make([]Entry, len(descs))
	for i, d := range descs {
		if out[i], err = s.entry(d); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func replaceRef(ms []v1.Descriptor, d v1.Descriptor) []v1.Descriptor {
	key := d.Annotations[AnnotationCanonical]
	out := ms[:0]
	for _, m := range ms {
		if m.Annotations[AnnotationCanonical] == key || m.Annotations[AnnotationRef] == d.Annotations[AnnotationRef] {
			continue
		}
		out = append(out, m)
	}
	return append(out, d)
}

// Canonical is the fully qualified form of an image reference
// ("alpine:3.3" → "index.docker.io/library/alpine:3.3"); strings that are not
// image references are returned unchanged.
func Canonical(ref string) string {
	r, err := name.ParseReference(ref)
	if err != nil {
		return ref
	}
	return r.Name()
}

// Entries lists the store's entries sorted by reference.
func (s *Store) Entries() ([]Entry, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(idx.Manifests))
	for _, d := range idx.Manifests {
		e, err := s.entry(d)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out, nil
}

func (s *Store) entry(d v1.Descriptor) (Entry, error) {
	size, err := s.treeSize(d, map[v1.Hash]bool{})
	if err != nil {
		return Entry{}, fmt.Errorf("store entry %s: %w", d.Annotations[AnnotationRef], err)
	}
	kind := d.Annotations[AnnotationKind]
	if kind == "" {
		kind = KindImage
	}
	ann := map[string]string{}
	for k, v := range d.Annotations {
		ann[k] = v
	}
	return Entry{Ref: d.Annotations[AnnotationRef], Kind: kind, Digest: d.Digest, Size: size, MediaType: d.MediaType, Annotations: ann}, nil
}

// treeSize sums the sizes of the distinct blobs reachable from d.
func (s *Store) treeSize(d v1.Descriptor, seen map[v1.Hash]bool) (int64, error) {
	if seen[d.Digest] {
		return 0, nil
	}
	seen[d.Digest] = true
	total := d.Size
	children, err := s.children(d)
	if err != nil {
		return 0, err
	}
	for _, c := range children {
		n, err := s.treeSize(c, seen)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// children lists the descriptors a manifest or index refers to; other blobs have none.
func (s *Store) children(d v1.Descriptor) ([]v1.Descriptor, error) {
	if !isManifest(d.MediaType) && !isIndex(d.MediaType) {
		return nil, nil
	}
	raw, err := s.readSmallBlob(d.Digest)
	if err != nil {
		return nil, err
	}
	return childDescriptors(d.MediaType, raw)
}

func (s *Store) readSmallBlob(h v1.Hash) ([]byte, error) {
	rc, _, err := s.Blob(h)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readLimited(rc, h)
}

func readLimited(r io.Reader, h v1.Hash) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", h, err)
	}
	if len(raw) > maxManifestSize {
		return nil, fmt.Errorf("manifest %s is larger than %d bytes", h, maxManifestSize)
	}
	return raw, nil
}

// childDescriptors parses a manifest or index and returns what it refers to.
func childDescriptors(mt types.MediaType, raw []byte) ([]v1.Descriptor, error) {
	if isIndex(mt) {
		var idx v1.IndexManifest
		if err := json.Unmarshal(raw, &idx); err != nil {
			return nil, fmt.Errorf("parse index: %w", err)
		}
		return idx.Manifests, nil
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	return append([]v1.Descriptor{m.Config}, m.Layers...), nil
}

func isIndex(mt types.MediaType) bool {
	return mt == types.OCIImageIndex || mt == types.DockerManifestList
}

func isManifest(mt types.MediaType) bool {
	return mt == types.OCIManifestSchema1 || mt == types.DockerManifestSchema2
}

// Blob opens a blob by digest.
func (s *Store) Blob(h v1.Hash) (io.ReadCloser, int64, error) {
	p, err := s.blobPath(h)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, fmt.Errorf("blob %s: %w", h, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("open blob %s: %w", h, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("stat blob %s: %w", h, err)
	}
	return f, st.Size(), nil
}

// HasBlob reports whether the blob is stored (with the given size, unless size < 0).
func (s *Store) HasBlob(h v1.Hash, size int64) bool {
	p, err := s.blobPath(h)
	if err != nil {
		return false
	}
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && (size < 0 || st.Size() == size)
}

// blobPath refuses anything but a well-formed sha256 digest, so that hostile
// manifests cannot name a path outside blobs/.
func (s *Store) blobPath(h v1.Hash) (string, error) {
	if !validDigest(h) {
		return "", fmt.Errorf("unsupported digest %q", h.String())
	}
	return filepath.Join(s.dir, "blobs", h.Algorithm, h.Hex), nil
}

func validDigest(h v1.Hash) bool {
	if h.Algorithm != "sha256" || len(h.Hex) != 64 {
		return false
	}
	for _, c := range h.Hex {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Descriptor returns the index.json entry for ref.
func (s *Store) Descriptor(ref string) (v1.Descriptor, error) {
	top, _, err := s.find(ref)
	return top, err
}

// progressKey carries a byte-count callback through PutImage/PutIndex.
type progressKey struct{}

type verifiedKey struct{}

// WithVerifiedSource marks readers under ctx as checking digest and size
// themselves before they report EOF (go-containerregistry's remote layers
// do), so the store does not hash every byte a second time. A reader that
// fails its check fails the copy, and the blob is not kept.
func WithVerifiedSource(ctx context.Context) context.Context {
	return context.WithValue(ctx, verifiedKey{}, true)
}

func verifiedSource(ctx context.Context) bool {
	v, _ := ctx.Value(verifiedKey{}).(bool)
	return v
}

// WithProgress returns a context whose blob writes report bytes stored
// (including blobs that were already present) to fn. fn must be safe for
// concurrent calls.
func WithProgress(ctx context.Context, fn func(n int64)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

func progressFrom(ctx context.Context) func(int64) {
	if fn, ok := ctx.Value(progressKey{}).(func(int64)); ok && fn != nil {
		return fn
	}
	return func(int64) {}
}
