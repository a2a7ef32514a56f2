package clusterimage

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/opengravity/gravity/internal/atomicfile"
)

// Spec is everything a cluster image is made of.
type Spec struct {
	Name, Version string // app name and version, recorded in manifest.json
	BaseImage     string // "gravity:0.1.0"
	CreatedBy     string // "tele 0.1.0"
	Description   string // one line for listings (`tele ls`)
	Kubernetes    string // the Kubernetes release a base image carries
	AppManifest   []byte // app.yaml as written
	GravityBinary string // path of the gravity executable to embed
	// TshBinary, when set, is embedded too (base images from before tsh
	// have none to pass on).
	TshBinary string
	Entries   []Entry
	Source    BlobSource
	// Delta, when set, writes an upgrade image without the blobs its base
	// image has.
	Delta *DeltaSpec
}

// DeltaSpec names the image a delta is built against and its blobs.
type DeltaSpec struct {
	From string            // "cluster-image:0.0.1"
	Have map[v1.Hash]int64 // its blobs, with their sizes
}

// Entry is one root to embed: a package or a container image.
type Entry struct {
	Ref         string // recorded as org.opencontainers.image.ref.name
	Kind        string // KindPackage or KindImage
	Descriptor  v1.Descriptor
	Annotations map[string]string // extra annotations for the index.json entry
}

// WriteOptions tune Write.
type WriteOptions struct {
	Overwrite bool
	// Progress, when set, is called as content is written with the bytes
	// done so far and the total.
	Progress func(done, total int64)
}

// ErrExists is wrapped by Write's error when the output exists and
// Overwrite is not set.
var ErrExists = errors.New("already exists")

// testHookWriter, when set, wraps the output file's writer; tests use it to
// simulate a full disk.
var testHookWriter func(io.Writer) io.Writer

// Write writes the cluster image described by spec to path. The file
// appears only once complete: it is written to a temporary file beside
// path, synced and renamed, and removed on any error or cancellation.
func Write(ctx context.Context, path string, spec Spec, opts WriteOptions) error {
	if err := spec.validate(); err != nil {
		return err
	}
	if err := checkTarget(path, opts.Overwrite); err != nil {
		return err
	}
	mtime, err := modTime()
	if err != nil {
		return err
	}
	p, err := newPlan(ctx, spec, mtime)
	if err != nil {
		return err
	}
	return writeAtomic(ctx, path, opts.Overwrite, func(w io.Writer) error {
		return p.write(ctx, w, spec.Source, mtime, opts.Progress)
	})
}

func (s *Spec) validate() error {
	switch {
	case s.Name == "":
		return errors.New("cluster image spec: name is empty")
	case s.Version == "":
		return errors.New("cluster image spec: version is empty")
	case len(s.AppManifest) == 0:
		return errors.New("cluster image spec: app manifest is empty")
	case s.GravityBinary == "":
		return errors.New("cluster image spec: no gravity binary given")
	case len(s.Entries) > 0 && s.Source == nil:
		return errors.New("cluster image spec: entries given without a blob source")
	}
	return nil
}

func checkTarget(path string, overwrite bool) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("checking output %s: %w", path, err)
	case fi.IsDir():
		return fmt.Errorf("output %s is a directory", path)
	case !overwrite:
		return fmt.Errorf("%s %w (use --overwrite to replace it)", path, ErrExists)
	}
	return nil
}

// writeAtomic runs fill on a temporary file beside path and renames it into
// place only if everything, including fsync, succeeded.
func writeAtomic(ctx context.Context, path string, overwrite bool, fill func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating temporary file for %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			if rmErr := os.Remove(f.Name()); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
				err = errors.Join(err, fmt.Errorf("removing temporary file: %w", rmErr))
			}
		}
	}()
	var w io.Writer = f
	if testHookWriter != nil {
		w = testHookWriter(w)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	if err := fill(ctxWriter{ctx: ctx, w: bw}); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return commit(ctx, f, path, overwrite)
}

// commit makes the finished temporary file f the output at path.
func commit(ctx context.Context, f *os.File, path string, overwrite bool) error {
	if err := f.Chmod(modeFile); err != nil {
		return fmt.Errorf("setting mode of %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", path, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The output may have appeared while we were writing.
	if err := checkTarget(path, overwrite); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("renaming into %s: %w", path, err)
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}

// ctxWriter stops a long copy as soon as ctx is done.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// plan is a cluster image resolved before any byte is written: every size
// is known so tar headers can be written ahead of streamed content.
type plan struct {
	meta      []byte
	files     []topFile
	layout    []byte
	index     []byte
	blobs     *blobSet
	refOf     map[v1.Hash]string // a ref reaching each blob, for error messages
	totalSize int64              // content bytes, for progress
	length    int64              // the tarball's length, recorded as archiveSize
}

// topFile is a top-level file: in memory, or on disk (the gravity binary).
type topFile struct {
	File
	data []byte
	path string
}

func newPlan(ctx context.Context, spec Spec, mtime time.Time) (*plan, error) {
	entries, err := sortedEntries(spec.Entries)
	if err != nil {
		return nil, err
	}
	p := &plan{blobs: newBlobSet(), refOf: map[v1.Hash]string{}}
	meta := Meta{FormatVersion: FormatVersion, Name: spec.Name, Version: spec.Version,
		BaseImage: spec.BaseImage, CreatedBy: spec.CreatedBy, Description: spec.Description,
		Kubernetes: spec.Kubernetes, Created: createdStamp(), Packages: []Item{}, Images: []Item{}}
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	for _, e := range entries {
		item, desc, err := p.addRoot(ctx, spec.Source, e)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", e.Kind, e.Ref, err)
		}
		if e.Kind == KindPackage {
			meta.Packages = append(meta.Packages, item)
		} else {
			meta.Images = append(meta.Images, item)
		}
		index.Manifests = append(index.Manifests, desc)
	}
	if spec.Delta != nil {
		meta.Delta = p.omit(*spec.Delta)
	}
	if p.files, err = topFiles(spec); err != nil {
		return nil, err
	}
	for _, f := range p.files {
		meta.Files = append(meta.Files, f.File)
		p.totalSize += f.Size
	}
	p.totalSize += p.blobs.total()
	return p, p.encode(&meta, &index, mtime)
}

func (p *plan) encode(meta *Meta, index *v1.IndexManifest, mtime time.Time) error {
	var err error
	if p.index, err = json.Marshal(index); err != nil {
		return fmt.Errorf("encoding %s: %w", IndexFile, err)
	}
	p.layout = []byte(`{"imageLayoutVersion":"1.0.0"}`)
	var files []File
	for _, f := range p.files {
		files = append(files, f.File)
	}
	var blobs []layoutBlob
	for _, h := range p.blobs.sorted() {
		blobs = append(blobs, layoutBlob{h.Hex, p.blobs.size[h]})
	}
	entries := layoutEntries(files, int64(len(p.layout)), int64(len(p.index)), blobs)
	// manifest.json records the length of the tar it is the first entry
	// of, its own included: encode until the recorded length is the
	// length. The length only grows with the number's digits, so this
	// settles in a step or two.
	for range 8 {
		if p.meta, err = json.MarshalIndent(meta, "", "  "); err != nil {
			return fmt.Errorf("encoding %s: %w", ManifestFile, err)
		}
		p.meta = append(p.meta, '\n')
		n, err := tarLength(int64(len(p.meta)), entries, mtime)
		if err != nil {
			return err
		}
		if n == meta.ArchiveSize {
			p.length = n
			p.totalSize += int64(len(p.meta) + len(p.index) + len(p.layout))
			return nil
		}
		meta.ArchiveSize = n
	}
	return fmt.Errorf("encoding %s: its archiveSize does not settle", ManifestFile)
}

// omit leaves out the blobs the delta's base image has: layers only, as
// every reader walks manifests and configs.
func (p *plan) omit(d DeltaSpec) *Delta {
	out := &Delta{From: d.From, Blobs: []Blob{}}
	for _, h := range p.blobs.sorted() {
		if _, doc := p.blobs.docs[h]; doc {
			continue
		}
		if n, ok := d.Have[h]; ok && n == p.blobs.size[h] {
			out.Blobs = append(out.Blobs, Blob{Digest: h.String(), Size: n})
			delete(p.blobs.size, h)
		}
	}
	return out
}

// sortedEntries orders entries canonically (packages, then images, each by
// ref) so the output does not depend on the caller's order.
func sortedEntries(in []Entry) ([]Entry, error) {
	out := slices.Clone(in)
	seen := map[string]bool{}
	for _, e := range out {
		if e.Kind != KindPackage && e.Kind != KindImage {
			return nil, fmt.Errorf("entry %q: kind %q is neither %q nor %q", e.Ref, e.Kind, KindPackage, KindImage)
		}
		if e.Ref == "" {
			return nil, fmt.Errorf("%s entry %s has an empty ref", e.Kind, e.Descriptor.Digest)
		}
		if seen[e.Ref] {
			return nil, fmt.Errorf("ref %q is listed twice", e.Ref)
		}
		seen[e.Ref] = true
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if a.Kind != b.Kind {
			return strings.Compare(b.Kind, a.Kind) // "package" before "image"
		}
		return strings.Compare(a.Ref, b.Ref)
	})
	return out, nil
}

// addRoot walks one root, adds its blobs to the plan and returns its
// manifest.json item and index.json descriptor.
func (p *plan) addRoot(ctx context.Context, src BlobSource, e Entry) (Item, v1.Descriptor, error) {
	d := e.Descriptor
	if err := checkDescriptor(d); err != nil {
		return Item{}, d, err
	}
	if d.Size == 0 {
		n, err := blobSize(src, d.Digest)
		if err != nil {
			return Item{}, d, err
		}
		d.Size = n
	}
	root := newBlobSet()
	root.docs = p.blobs.docs // documents are read once, whichever root reaches them first
	get := sourceDocs(src, root)
	if err := walk(ctx, get, d, root, 0); err != nil {
		return Item{}, d, err
	}
	for h := range root.size {
		if err := p.blobs.add(v1.Descriptor{Digest: h, Size: root.size[h]}); err != nil {
			return Item{}, d, err
		}
		if _, ok := p.refOf[h]; !ok {
			p.refOf[h] = e.Ref
		}
	}
	platform, err := platformOf(get, d)
	if err != nil {
		return Item{}, d, err
	}
	if d.ArtifactType == "" && isManifest(d.MediaType) {
		// Let readers of index.json tell packages apart without fetching
		// the manifest, as the OCI spec recommends.
		m, err := v1.ParseManifest(bytes.NewReader(p.blobs.docs[d.Digest]))
		if err != nil {
			return Item{}, d, fmt.Errorf("parsing manifest %s: %w", d.Digest, err)
		}
		d.ArtifactType = m.ArtifactType
	}
	item := Item{Ref: e.Ref, Kind: e.Kind, Digest: d.Digest.String(), Size: root.total(),
		MediaType: string(d.MediaType), Platform: platform}
	return item, indexDescriptor(d, e), nil
}

func indexDescriptor(d v1.Descriptor, e Entry) v1.Descriptor {
	ann := map[string]string{}
	for k, v := range d.Annotations {
		ann[k] = v
	}
	for k, v := range e.Annotations {
		ann[k] = v
	}
	ann[AnnotationRefName] = e.Ref
	ann[AnnotationKind] = e.Kind
	d.Annotations = ann
	d.Data = nil // the blob is in the layout; embedding it again would only bloat index.json
	d.URLs = nil
	return d
}

func blobSize(src BlobSource, h v1.Hash) (int64, error) {
	rc, n, err := src.Blob(h)
	if err != nil {
		return 0, fmt.Errorf("reading blob %s: %w", h, err)
	}
	if err := rc.Close(); err != nil {
		return 0, fmt.Errorf("closing blob %s: %w", h, err)
	}
	return n, nil
}

// topFiles returns the top-level files after manifest.json, in tar order.
func topFiles(spec Spec) ([]topFile, error) {
	mem := func(name string, mode int64, data []byte) topFile {
		sum := sha256.Sum256(data)
		return topFile{File: File{Name: name, Size: int64(len(data)), Mode: mode,
			Digest: "sha256:" + hex.EncodeToString(sum[:])}, data: data}
	}
	files := []topFile{
		mem(AppManifestFile, modeFile, spec.AppManifest),
		mem(ReadmeFile, modeFile, []byte(readme(spec))),
		mem(InstallScript, modeExec, []byte(installScript)),
		mem(UpgradeScript, modeExec, []byte(upgradeScript)),
		mem(UploadScript, modeExec, []byte(uploadScript)),
	}
	for _, bin := range []struct{ name, path string }{{GravityBinary, spec.GravityBinary}, {TshBinary, spec.TshBinary}} {
		if bin.path == "" {
			continue
		}
		size, digest, err := hashFile(bin.path)
		if err != nil {
			return nil, fmt.Errorf("%s binary: %w", bin.name, err)
		}
		files = append(files, topFile{File: File{Name: bin.name, Size: size, Digest: digest, Mode: modeExec}, path: bin.path})
	}
	return files, nil
}

func hashFile(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", fmt.Errorf("opening gravity binary: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, "", fmt.Errorf("gravity binary: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return 0, "", fmt.Errorf("gravity binary %s is not a regular file", path)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", fmt.Errorf("reading gravity binary: %w", err)
	}
	return n, "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// write emits the tar in the documented order.
func (p *plan) write(ctx context.Context, w io.Writer, src BlobSource, mtime time.Time, progress func(done, total int64)) error {
	out := &countingWriter{w: w}
	tw := &tarWriter{tw: tar.NewWriter(out), mtime: mtime, total: p.totalSize, progress: progress,
		buf: make([]byte, 1<<20)}
	if err := tw.bytes(ManifestFile, modeFile, p.meta); err != nil {
		return err
	}
	for _, f := range p.files {
		if err := tw.file(f); err != nil {
			return err
		}
	}
	if err := tw.dir(PackagesDir); err != nil {
		return err
	}
	if err := tw.bytes(OCILayoutFile, modeFile, p.layout); err != nil {
		return err
	}
	if err := tw.bytes(IndexFile, modeFile, p.index); err != nil {
		return err
	}
	if err := tw.dir(BlobsDir); err != nil {
		return err
	}
	if err := tw.dir(BlobsSHA256); err != nil {
		return err
	}
	for _, h := range p.blobs.sorted() {
		if err := p.writeBlob(ctx, tw, src, h); err != nil {
			return err
		}
	}
	if err := tw.tw.Close(); err != nil {
		return fmt.Errorf("finishing tar: %w", err)
	}
	if out.n != p.length {
		// A reader would refuse the file as cut or padded.
		return fmt.Errorf("wrote %d bytes, but %s records %d", out.n, ManifestFile, p.length)
	}
	return nil
}

func (p *plan) writeBlob(ctx context.Context, tw *tarWriter, src BlobSource, h v1.Hash) error {
	name := BlobsSHA256 + "/" + h.Hex
	size := p.blobs.size[h]
	if doc, ok := p.blobs.docs[h]; ok {
		return tw.bytes(name, modeFile, doc)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	rc, n, err := src.Blob(h)
	if err != nil {
		return fmt.Errorf("reading blob %s (ref %s): %w", h, p.refOf[h], err)
	}
	defer rc.Close()
	if n != size {
		return fmt.Errorf("blob %s (ref %s): source has %d bytes, descriptor says %d", h, p.refOf[h], n, size)
	}
	if err := tw.stream(name, modeFile, size, h.Hex, rc); err != nil {
		var mm *mismatchError
		if errors.As(err, &mm) {
			return fmt.Errorf("digest mismatch for blob %s (ref %s): %w", h, p.refOf[h], err)
		}
		return fmt.Errorf("blob %s (ref %s): %w", h, p.refOf[h], err)
	}
	return nil
}

// tarWriter writes normalized entries and reports progress.
type tarWriter struct {
	tw       *tar.Writer
	mtime    time.Time
	done     int64
	total    int64
	progress func(done, total int64)
	buf      []byte
}

func (t *tarWriter) header(name string, typ byte, mode, size int64) error {
	if err := t.tw.WriteHeader(header(name, typ, mode, size, t.mtime)); err != nil {
		return fmt.Errorf("writing tar header for %s: %w", name, err)
	}
	return nil
}

func (t *tarWriter) dir(name string) error {
	return t.header(name+"/", tar.TypeDir, modeDir, 0)
}

func (t *tarWriter) bytes(name string, mode int64, data []byte) error {
	if err := t.header(name, tar.TypeReg, mode, int64(len(data))); err != nil {
		return err
	}
	if _, err := t.tw.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	t.advance(int64(len(data)))
	return nil
}

func (t *tarWriter) file(f topFile) error {
	if f.path == "" {
		return t.bytes(f.Name, f.Mode, f.data)
	}
	r, err := os.Open(f.path)
	if err != nil {
		return fmt.Errorf("opening %s: %w", f.path, err)
	}
	defer r.Close()
	hex := strings.TrimPrefix(f.Digest, "sha256:")
	if err := t.stream(f.Name, f.Mode, f.Size, hex, r); err != nil {
		return fmt.Errorf("%s (%s): %w", f.Name, f.path, err)
	}
	return nil
}

// stream copies exactly size bytes of r into a new entry, failing if r has
// more or fewer bytes or if they do not hash to wantHex.
func (t *tarWriter) stream(name string, mode, size int64, wantHex string, r io.Reader) error {
	if err := t.header(name, tar.TypeReg, mode, size); err != nil {
		return err
	}
	h := sha256.New()
	dst := &progressWriter{w: io.MultiWriter(t.tw, h), t: t}
	if _, err := io.CopyBuffer(dst, io.LimitReader(r, size), t.buf); err != nil {
		return err
	}
	if dst.n != size {
		return fmt.Errorf("content ended after %d of %d bytes", dst.n, size)
	}
	if extra, _ := io.ReadFull(r, t.buf[:1]); extra > 0 {
		return fmt.Errorf("content is longer than %d bytes", size)
	}
	return checkSum(h, wantHex)
}

func checkSum(h hash.Hash, wantHex string) error {
	if got := hex.EncodeToString(h.Sum(nil)); got != wantHex {
		return &mismatchError{got: got, want: wantHex}
	}
	return nil
}

// mismatchError reports content that does not hash to its expected digest.
type mismatchError struct{ got, want string }

func (e *mismatchError) Error() string {
	return fmt.Sprintf("content hashes to sha256:%s, want sha256:%s", e.got, e.want)
}

func (t *tarWriter) advance(n int64) {
	t.done += n
	if t.progress != nil {
		t.progress(t.done, t.total)
	}
}

type progressWriter struct {
	w io.Writer
	t *tarWriter
	n int64
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	p.t.advance(int64(n))
	return n, err
}
