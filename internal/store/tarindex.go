package store

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// maxTarEntries bounds the work a hostile archive can ask for.
const maxTarEntries = 1 << 16

// tarFile is one regular file inside an archive: where its bytes start, how
// many there are, and their sha256 (computed while indexing).
type tarFile struct {
	offset, size int64
	sha256       string
}

// tarIndex is a random-access view of an archive's regular files, built in
// one pass that also rejects anything unsafe. Nothing is extracted by name,
// so no archive entry can ever be written outside the store.
type tarIndex struct {
	f         *os.File
	files     map[string]tarFile
	links     map[string]string // link name → target, both archive-relative
	hardlinks int
}

// countingReader tracks the archive offset; it deliberately hides Seek so
// that archive/tar reads (and we hash) every byte.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func indexTar(ctx context.Context, f *os.File) (*tarIndex, error) {
	ti := &tarIndex{f: f, files: map[string]tarFile{}, links: map[string]string{}}
	cr := &countingReader{r: f}
	tr := tar.NewReader(cr)
	for count := 0; ; count++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("corrupt or truncated archive: %w", err)
		}
		if count >= maxTarEntries {
			return nil, fmt.Errorf("archive has more than %d entries", maxTarEntries)
		}
		if err := ti.add(hdr, tr, cr); err != nil {
			return nil, err
		}
	}
	if err := ti.resolveLinks(); err != nil {
		return nil, err
	}
	return ti, nil
}

func (ti *tarIndex) add(hdr *tar.Header, tr *tar.Reader, cr *countingReader) error {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if _, dup := ti.files[name]; dup {
		return fmt.Errorf("archive entry %q appears twice", hdr.Name)
	}
	if _, dup := ti.links[name]; dup {
		return fmt.Errorf("archive entry %q appears twice", hdr.Name)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return nil
	case tar.TypeReg:
		return ti.addFile(name, hdr, tr, cr)
	case tar.TypeSymlink:
		return ti.addLink(name, hdr.Linkname, path.Dir(name))
	case tar.TypeLink:
		ti.hardlinks++
		return ti.addLink(name, hdr.Linkname, ".")
	default:
		return fmt.Errorf("archive entry %q has unsupported type %q", hdr.Name, hdr.Typeflag)
	}
}

func (ti *tarIndex) addFile(name string, hdr *tar.Header, tr *tar.Reader, cr *countingReader) error {
	if isSparse(hdr) {
		return fmt.Errorf("archive entry %q is a sparse file", hdr.Name)
	}
	offset := cr.n
	h := sha256.New()
	n, err := io.Copy(h, tr)
	if err != nil {
		return fmt.Errorf("corrupt or truncated archive at %q: %w", hdr.Name, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("corrupt archive: entry %q has %d bytes, header says %d", hdr.Name, n, hdr.Size)
	}
	ti.files[name] = tarFile{offset: offset, size: n, sha256: hex.EncodeToString(h.Sum(nil))}
	return nil
}

// isSparse: archive/tar expands a sparse file's holes, so a few bytes of
// archive can claim terabytes of zeros.
func isSparse(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return hdr.Typeflag == tar.TypeGNUSparse
}

// addLink records a link whose target stays inside the archive; base is
// the directory a relative target is resolved against.
func (ti *tarIndex) addLink(name, target, base string) error {
	joined, err := linkTarget(target, base)
	if err != nil {
		return fmt.Errorf("archive link %q: %w", name, err)
	}
	ti.links[name] = joined
	return nil
}

// linkTarget resolves a link's target against base (the directory it is
// resolved from) and refuses targets that are absolute or climb out of the
// archive. A link to the archive's root is refused too: no archive needs
// one, and it is the first step of most link-chain escapes.
func linkTarget(target, base string) (string, error) {
	if target == "" || path.IsAbs(target) || strings.ContainsAny(target, "\x00\\") {
		return "", fmt.Errorf("points outside the archive (%q)", target)
	}
	joined := path.Join(base, target)
	if joined == ".." || strings.HasPrefix(joined, "../") || joined == "." {
		return "", fmt.Errorf("points outside the archive (%q)", target)
	}
	return joined, nil
}

// resolveLinks turns links into aliases of the regular files they point to;
// chains and dangling links are refused rather than followed.
func (ti *tarIndex) resolveLinks() error {
	for name, target := range ti.links {
		if _, chained := ti.links[target]; chained {
			return fmt.Errorf("archive link %q points to another link (%q)", name, target)
		}
		f, ok := ti.files[target]
		if !ok {
			return fmt.Errorf("archive link %q points to %q, which is not a regular file in the archive", name, target)
		}
		ti.files[name] = f
	}
	return nil
}

// cleanName normalises an entry name and refuses absolute paths and "..".
func cleanName(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "\x00\\") || path.IsAbs(name) {
		return "", fmt.Errorf("archive entry %q has an unsafe path", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("archive entry %q has an unsafe path", name)
		}
	}
	return path.Clean(name), nil
}

// open returns a reader over one file of the archive.
func (ti *tarIndex) open(name string) (io.ReadCloser, int64, error) {
	f, ok := ti.files[name]
	if !ok {
		return nil, 0, fmt.Errorf("%s: %w", name, os.ErrNotExist)
	}
	return io.NopCloser(io.NewSectionReader(ti.f, f.offset, f.size)), f.size, nil
}

// has reports whether name is a regular file (or a link to one).
func (ti *tarIndex) has(name string) bool {
	_, ok := ti.files[name]
	return ok
}
