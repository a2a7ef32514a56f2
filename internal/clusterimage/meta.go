package clusterimage

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Image is an opened cluster image: its path and its manifest.json.
type Image struct {
	Path string
	Meta Meta
}

// expectedFiles are the top-level regular files after manifest.json, in tar
// order, with their modes.
var expectedFiles = []struct {
	name string
	mode int64
}{
	{AppManifestFile, modeFile},
	{ReadmeFile, modeFile},
	{InstallScript, modeExec},
	{UpgradeScript, modeExec},
	{UploadScript, modeExec},
	{GravityBinary, modeExec},
}

// optionalFile may follow them: images made before tsh existed lack it.
var optionalFile = struct {
	name string
	mode int64
}{TshBinary, modeExec}

// Open reads a cluster image's manifest.json, which must be its first
// entry, checks the format version and that the file is as long as the
// manifest says (a *SizeError if not). It reads nothing else, so it is
// cheap whatever the image's size; use Verify for a full check.
func Open(path string) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening cluster image: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	if err := checkNotCompressed(br, path); err != nil {
		return nil, err
	}
	meta, err := readMeta(tar.NewReader(br), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	n, err := fileLength(f)
	if err != nil {
		return nil, err
	}
	if err := checkLength(path, n, meta); err != nil {
		return nil, err
	}
	return &Image{Path: path, Meta: *meta}, nil
}

// checkNotCompressed turns the common mistake of passing a compressed file
// into a clear error rather than a tar parse error.
func checkNotCompressed(br *bufio.Reader, path string) error {
	magic, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return fmt.Errorf("%s is gzip-compressed: a cluster image is a plain tar, decompress it first", path)
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return fmt.Errorf("%s is zstd-compressed: a cluster image is a plain tar, decompress it first", path)
	case bytes.HasPrefix(magic, []byte("\xfd7zXZ\x00")):
		return fmt.Errorf("%s is xz-compressed: a cluster image is a plain tar, decompress it first", path)
	}
	return nil
}

// readMeta reads and validates the first entry, manifest.json, copying its
// bytes to w when w is not nil.
func readMeta(tr *tar.Reader, w io.Writer) (*Meta, error) {
	hdr, err := tr.Next()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("not a cluster image: empty archive")
	}
	if err != nil {
		return nil, fmt.Errorf("not a cluster image: reading first tar entry: %w", err)
	}
	if hdr.Name != ManifestFile {
		return nil, fmt.Errorf("not a cluster image: first entry is %q, want %s", hdr.Name, ManifestFile)
	}
	if err := checkHeader(hdr, tar.TypeReg, modeFile); err != nil {
		return nil, err
	}
	raw, err := readSmall(tr, hdr)
	if err != nil {
		return nil, err
	}
	if w != nil {
		if _, err := w.Write(raw); err != nil {
			return nil, fmt.Errorf("writing %s: %w", ManifestFile, err)
		}
	}
	return parseMeta(raw)
}

func readSmall(tr *tar.Reader, hdr *tar.Header) ([]byte, error) {
	if hdr.Size > maxMetaSize {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d allowed", hdr.Name, hdr.Size, maxMetaSize)
	}
	raw := make([]byte, hdr.Size)
	if _, err := io.ReadFull(tr, raw); err != nil {
		return nil, fmt.Errorf("reading %s: %w", hdr.Name, truncated(err))
	}
	return raw, nil
}

// truncated names the error a cut-off tarball gives.
func truncated(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("cluster image is truncated: %w", io.ErrUnexpectedEOF)
	}
	return err
}

func checkHeader(hdr *tar.Header, typ byte, mode int64) error {
	if hdr.Typeflag != typ {
		return fmt.Errorf("entry %q has tar type %q, want %q", hdr.Name, hdr.Typeflag, typ)
	}
	if hdr.Linkname != "" {
		return fmt.Errorf("entry %q is a link", hdr.Name)
	}
	if hdr.Mode != mode {
		return fmt.Errorf("entry %q has mode %#o, want %#o", hdr.Name, hdr.Mode, mode)
	}
	return nil
}

func parseMeta(raw []byte) (*Meta, error) {
	var probe struct {
		FormatVersion int `json:"formatVersion"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", ManifestFile, err)
	}
	if probe.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("unsupported cluster image format version %d (this build reads version %d)",
			probe.FormatVersion, FormatVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var m Meta
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", ManifestFile, err)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("invalid %s: %w", ManifestFile, err)
	}
	return &m, nil
}

func (m *Meta) validate() error {
	if m.Name == "" || m.Version == "" {
		return errors.New("name and version must be set")
	}
	if m.ArchiveSize < tarEnd {
		return fmt.Errorf("archiveSize %d is less than an empty tar's", m.ArchiveSize)
	}
	expected := expectedFiles
	if len(m.Files) == len(expectedFiles)+1 {
		expected = append(slices.Clone(expectedFiles), optionalFile)
	}
	if len(m.Files) != len(expected) {
		return fmt.Errorf("lists %d files, want %d", len(m.Files), len(expectedFiles))
	}
	for i, f := range m.Files {
		want := expected[i]
		if f.Name != want.name || f.Mode != want.mode {
			return fmt.Errorf("file %d is %q mode %#o, want %q mode %#o", i, f.Name, f.Mode, want.name, want.mode)
		}
		if f.Size < 0 || !validDigest(f.Digest) {
			return fmt.Errorf("file %s: invalid size %d or digest %q", f.Name, f.Size, f.Digest)
		}
	}
	if d := m.Delta; d != nil {
		if d.From == "" {
			return errors.New("delta: from is empty")
		}
		seen := map[string]bool{}
		for _, b := range d.Blobs {
			if !validDigest(b.Digest) || b.Size < 0 || seen[b.Digest] {
				return fmt.Errorf("delta: invalid or repeated blob %q (size %d)", b.Digest, b.Size)
			}
			seen[b.Digest] = true
		}
	}
	refs := map[string]bool{}
	for _, list := range []struct {
		kind  string
		items []Item
	}{{KindPackage, m.Packages}, {KindImage, m.Images}} {
		for _, it := range list.items {
			if err := it.validate(list.kind, refs); err != nil {
				return err
			}
		}
	}
	return nil
}

func (it Item) validate(kind string, refs map[string]bool) error {
	switch {
	case it.Kind != kind:
		return fmt.Errorf("%s %q is listed with kind %q", kind, it.Ref, it.Kind)
	case it.Ref == "":
		return fmt.Errorf("%s %s has an empty ref", kind, it.Digest)
	case refs[it.Ref]:
		return fmt.Errorf("ref %q is listed twice", it.Ref)
	case !validDigest(it.Digest):
		return fmt.Errorf("%s %q: invalid digest %q", kind, it.Ref, it.Digest)
	case it.Size < 0:
		return fmt.Errorf("%s %q: negative size", kind, it.Ref)
	}
	refs[it.Ref] = true
	return nil
}

func validDigest(d string) bool {
	hex, ok := strings.CutPrefix(d, "sha256:")
	return ok && len(hex) == 64 && isLowerHex(hex)
}
