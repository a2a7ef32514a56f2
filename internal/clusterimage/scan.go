package clusterimage

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// sink receives the entries of a scanned image; Unpack writes them to
// disk, Verify discards them. Names are only ever the known layout's.
type sink interface {
	dir(name string) error
	file(name string, mode int64) (io.WriteCloser, error)
}

// discard is the sink of Verify.
type discard struct{}

func (discard) dir(string) error { return nil }
func (discard) file(string, int64) (io.WriteCloser, error) {
	return nopCloser{io.Discard}, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// Docs bigger than this are not kept for the manifest walk; a manifest or
// config of that size does not occur in practice.
const (
	maxDocSize   = 4 << 20
	maxDocsTotal = 256 << 20
)

// Verify reads the whole image and checks it: every entry in the documented
// order and nothing else, every file and blob matching its digest, every
// descriptor reachable from index.json present, manifest.json consistent
// with index.json, the tar complete.
func Verify(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening cluster image: %w", err)
	}
	defer f.Close()
	if _, err := scanImage(ctx, f, path, discard{}); err != nil {
		return fmt.Errorf("verifying %s: %w", path, err)
	}
	return nil
}

// scanner holds the state of one pass over an image.
type scanner struct {
	ctx   context.Context
	path  string
	size  int64 // the file's length; the scan stops at once if the manifest says otherwise
	tr    *tar.Reader
	eof   *eofReader
	out   sink
	meta  *Meta
	index *v1.IndexManifest
	blobs map[v1.Hash]int64
	docs  map[v1.Hash][]byte
	kept  int64
	last  string
	buf   []byte
}

// scanImage reads the image in f, checking its length against the
// manifest before anything else.
func scanImage(ctx context.Context, f *os.File, path string, out sink) (*Meta, error) {
	size, err := fileLength(f)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 1<<20)
	if err := checkNotCompressed(br, path); err != nil {
		return nil, err
	}
	eof := &eofReader{r: br}
	s := &scanner{ctx: ctx, path: path, size: size, tr: tar.NewReader(eof), eof: eof, out: out, blobs: map[v1.Hash]int64{},
		docs: map[v1.Hash][]byte{}, buf: make([]byte, 1<<20)}
	if err := s.run(); err != nil {
		return nil, err
	}
	return s.meta, nil
}

func (s *scanner) run() error {
	w, err := s.out.file(ManifestFile, modeFile)
	if err != nil {
		return err
	}
	if s.meta, err = readMeta(s.tr, w); err != nil {
		return errors.Join(err, w.Close())
	}
	if err := checkLength(s.path, s.size, s.meta); err != nil {
		return errors.Join(err, w.Close())
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", ManifestFile, err)
	}
	for _, f := range s.meta.Files {
		if err := s.topFile(f); err != nil {
			return err
		}
	}
	if err := s.layoutHead(); err != nil {
		return err
	}
	if err := s.blobEntries(); err != nil {
		return err
	}
	return s.resolve()
}

// next returns the next header, which must exist.
func (s *scanner) next(want string) (*tar.Header, error) {
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	hdr, err := s.tr.Next()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("cluster image is truncated: %s is missing", want)
	}
	if err != nil {
		return nil, fmt.Errorf("reading tar header: %w", truncated(err))
	}
	if hdr.Name != want {
		return nil, fmt.Errorf("unexpected entry %q where %s belongs", hdr.Name, want)
	}
	return hdr, nil
}

func (s *scanner) topFile(f File) error {
	hdr, err := s.next(f.Name)
	if err != nil {
		return err
	}
	if err := checkHeader(hdr, tar.TypeReg, f.Mode); err != nil {
		return err
	}
	if hdr.Size != f.Size {
		return fmt.Errorf("%s is %d bytes, %s says %d", f.Name, hdr.Size, ManifestFile, f.Size)
	}
	if _, err := s.stream(f.Name, f.Mode, hdr.Size, strings.TrimPrefix(f.Digest, "sha256:"), false); err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	return nil
}

// layoutHead reads packages/ up to the first blob.
func (s *scanner) layoutHead() error {
	if err := s.dirEntry(PackagesDir); err != nil {
		return err
	}
	layout, err := s.smallFile(OCILayoutFile)
	if err != nil {
		return err
	}
	var l struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(layout, &l); err != nil || l.Version != "1.0.0" {
		return fmt.Errorf("%s: want imageLayoutVersion 1.0.0 (got %q, %v)", OCILayoutFile, l.Version, err)
	}
	raw, err := s.smallFile(IndexFile)
	if err != nil {
		return err
	}
	if s.index, err = v1.ParseIndexManifest(bytes.NewReader(raw)); err != nil {
		return fmt.Errorf("parsing %s: %w", IndexFile, err)
	}
	if err := checkIndex(s.meta, s.index); err != nil {
		return fmt.Errorf("%s does not match %s: %w", IndexFile, ManifestFile, err)
	}
	if err := s.dirEntry(BlobsDir); err != nil {
		return err
	}
	return s.dirEntry(BlobsSHA256)
}

func (s *scanner) dirEntry(name string) error {
	hdr, err := s.next(name + "/")
	if err != nil {
		return err
	}
	if err := checkHeader(hdr, tar.TypeDir, modeDir); err != nil {
		return err
	}
	return s.out.dir(name)
}

func (s *scanner) smallFile(name string) ([]byte, error) {
	hdr, err := s.next(name)
	if err != nil {
		return nil, err
	}
	if err := checkHeader(hdr, tar.TypeReg, modeFile); err != nil {
		return nil, err
	}
	raw, err := readSmall(s.tr, hdr)
	if err != nil {
		return nil, err
	}
	w, err := s.out.file(name, modeFile)
	if err != nil {
		return nil, err
	}
	_, err = w.Write(raw)
	if err = errors.Join(err, w.Close()); err != nil {
		return nil, fmt.Errorf("writing %s: %w", name, err)
	}
	return raw, nil
}

// checkIndex compares index.json's roots with manifest.json's items; both
// are written in the same order.
func checkIndex(m *Meta, idx *v1.IndexManifest) error {
	items := slices.Concat(m.Packages, m.Images)
	if len(idx.Manifests) != len(items) {
		return fmt.Errorf("%d roots, want %d", len(idx.Manifests), len(items))
	}
	for i, d := range idx.Manifests {
		it := items[i]
		got := Item{Ref: d.Annotations[AnnotationRefName], Kind: d.Annotations[AnnotationKind],
			Digest: d.Digest.String(), MediaType: string(d.MediaType)}
		want := Item{Ref: it.Ref, Kind: it.Kind, Digest: it.Digest, MediaType: it.MediaType}
		if got != want {
			return fmt.Errorf("root %d is %+v, want %+v", i, got, want)
		}
		if err := checkDescriptor(d); err != nil {
			return fmt.Errorf("root %d: %w", i, err)
		}
	}
	return nil
}

// blobEntries reads the blobs up to the end of the archive.
func (s *scanner) blobEntries() error {
	for {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		hdr, err := s.tr.Next()
		if errors.Is(err, io.EOF) && s.eof.seen {
			return errors.New("cluster image is truncated: the end-of-archive marker is missing")
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading tar header: %w", truncated(err))
		}
		if err := s.blob(hdr); err != nil {
			return err
		}
	}
}

func (s *scanner) blob(hdr *tar.Header) error {
	hexName, ok := strings.CutPrefix(hdr.Name, BlobsSHA256+"/")
	if !ok || len(hexName) != 64 || !isLowerHex(hexName) {
		return fmt.Errorf("unexpected entry %q", hdr.Name)
	}
	if hdr.Name <= s.last {
		return fmt.Errorf("blob %s is out of order or duplicated", hexName)
	}
	s.last = hdr.Name
	if err := checkHeader(hdr, tar.TypeReg, modeFile); err != nil {
		return err
	}
	h := v1.Hash{Algorithm: "sha256", Hex: hexName}
	keep := hdr.Size <= maxDocSize && s.kept+hdr.Size <= maxDocsTotal
	doc, err := s.stream(hdr.Name, modeFile, hdr.Size, hexName, keep)
	if err != nil {
		var mm *mismatchError
		if errors.As(err, &mm) {
			return fmt.Errorf("digest mismatch for blob %s: %w", h, err)
		}
		return fmt.Errorf("blob %s: %w", h, err)
	}
	s.blobs[h] = hdr.Size
	if doc != nil && bytes.HasPrefix(bytes.TrimLeft(doc, " \t\r\n"), []byte("{")) {
		s.docs[h] = doc
		s.kept += int64(len(doc))
	}
	return nil
}

// stream copies the current entry to the sink while hashing it, returning
// its bytes when keep is set.
func (s *scanner) stream(name string, mode, size int64, wantHex string, keep bool) ([]byte, error) {
	w, err := s.out.file(name, mode)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	var kept *bytes.Buffer
	dst := io.MultiWriter(w, h)
	if keep {
		kept = bytes.NewBuffer(make([]byte, 0, size))
		dst = io.MultiWriter(w, h, kept)
	}
	n, err := io.CopyBuffer(dst, ctxReader{s.ctx, s.tr}, s.buf)
	if err = errors.Join(err, w.Close()); err != nil {
		return nil, truncated(err)
	}
	if n != size {
		return nil, fmt.Errorf("cluster image is truncated: got %d of %d bytes", n, size)
	}
	if err := checkSum(h, wantHex); err != nil {
		return nil, err
	}
	if kept != nil {
		return kept.Bytes(), nil
	}
	return nil, nil
}

// eofReader records whether the tar reader ran into the end of the file.
// archive/tar reports a missing end-of-archive marker as a clean io.EOF,
// but it reads a complete archive without ever hitting the end of the
// stream, so seeing it means the tarball was cut.
type eofReader struct {
	r    io.Reader
	seen bool
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if errors.Is(err, io.EOF) {
		e.seen = true
	}
	return n, err
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// resolve walks every root of index.json and checks that the blobs present
// are exactly the blobs reachable, and that manifest.json's sizes add up.
func (s *scanner) resolve() error {
	all := newBlobSet()
	get := func(d v1.Descriptor) ([]byte, error) {
		if doc, ok := s.docs[d.Digest]; ok && int64(len(doc)) == d.Size {
			return doc, nil
		}
		if _, ok := s.blobs[d.Digest]; ok {
			return nil, fmt.Errorf("blob %s is not a readable manifest of %d bytes", d.Digest, d.Size)
		}
		return nil, fmt.Errorf("manifest %s is missing", d.Digest)
	}
	items := slices.Concat(s.meta.Packages, s.meta.Images)
	for i, d := range s.index.Manifests {
		root := newBlobSet()
		if err := walk(s.ctx, get, d, root, 0); err != nil {
			return fmt.Errorf("%s %s: %w", items[i].Kind, items[i].Ref, err)
		}
		if err := s.checkPresent(root, items[i]); err != nil {
			return err
		}
		for h, n := range root.size {
			all.size[h] = n
		}
	}
	for h := range s.blobs {
		if _, ok := all.size[h]; !ok {
			return fmt.Errorf("unexpected blob %s: no root references it", h)
		}
	}
	return nil
}

func (s *scanner) checkPresent(root *blobSet, it Item) error {
	omitted := s.meta.omitted()
	for h, n := range root.size {
		got, ok := s.blobs[h]
		switch {
		case !ok && omitted[h] == n && hasKey(omitted, h):
			// left out of a delta image: the cluster has it
		case !ok:
			return fmt.Errorf("%s %s: blob %s is missing", it.Kind, it.Ref, h)
		case got != n:
			return fmt.Errorf("%s %s: blob %s is %d bytes, descriptor says %d", it.Kind, it.Ref, h, got, n)
		}
	}
	if root.total() != it.Size {
		return fmt.Errorf("%s %s: blobs add up to %d bytes, %s says %d", it.Kind, it.Ref, root.total(), ManifestFile, it.Size)
	}
	return nil
}

func hasKey[K comparable, V any](m map[K]V, k K) bool {
	_, ok := m[k]
	return ok
}
