package clusterimage

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// SizeError is a cluster image whose length is not the archiveSize its
// manifest.json records: a copy cut short, or one with bytes appended. It
// is found from manifest.json alone, without reading the blobs, so every
// reader (inspect, unpack, install) refuses such a file at once.
type SizeError struct {
	Path string
	Want int64 // manifest.json's archiveSize
	Got  int64 // the file's length; for an unpacked directory, the tar its files make up
	// Unpacked is set when Path is a directory a cut tarball was unpacked
	// into: Got is then only close to the length of what was unpacked.
	Unpacked bool
}

func (e *SizeError) Error() string {
	switch {
	case e.Unpacked:
		return fmt.Sprintf("%s is an incomplete cluster image: about %d of its %d bytes are missing; "+
			"the tarball it was unpacked from was cut short: copy it again, check it with `tele inspect`, and unpack it again",
			e.Path, e.Want-e.Got, e.Want)
	case e.Got < e.Want:
		return fmt.Sprintf("%s is truncated: %d of its %d bytes are missing (the file has %d): copy it again",
			e.Path, e.Want-e.Got, e.Want, e.Got)
	default:
		return fmt.Sprintf("%s has %d bytes appended after its end (the image is %d bytes, the file %d): "+
			"it is not the file tele wrote; copy it again", e.Path, e.Got-e.Want, e.Want, e.Got)
	}
}

// Missing is how many bytes are missing; negative when bytes were appended.
func (e *SizeError) Missing() int64 { return e.Want - e.Got }

// checkLength compares a tarball's length with the one its manifest
// records.
func checkLength(path string, got int64, m *Meta) error {
	if got != m.ArchiveSize {
		return &SizeError{Path: path, Want: m.ArchiveSize, Got: got}
	}
	return nil
}

// fileLength is the length of an open image file.
func fileLength(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("cluster image: %w", err)
	}
	return fi.Size(), nil
}

// tarEnd is the end-of-archive marker archive/tar writes: two zero blocks.
const tarEnd = 2 * blockSize

const blockSize = 512

// header is the tar header of every entry the writer makes: nothing but
// type, name, mode, size and mtime, so that the output is reproducible and
// its length can be computed before it is written.
func header(name string, typ byte, mode, size int64, mtime time.Time) *tar.Header {
	return &tar.Header{Typeflag: typ, Name: name, Mode: mode, Size: size, ModTime: mtime}
}

// entryLength is how many bytes an entry takes in a tar that archive/tar
// writes: its header blocks (several when it needs PAX records) and its
// content padded to a whole block.
func entryLength(hdr *tar.Header) (int64, error) {
	var c countingWriter
	tw := tar.NewWriter(&c)
	if err := tw.WriteHeader(hdr); err != nil {
		return 0, fmt.Errorf("tar header for %s: %w", hdr.Name, err)
	}
	// tw is dropped without writing the content: only the header's
	// length is wanted.
	return c.n + padded(hdr.Size), nil
}

func padded(n int64) int64 { return (n + blockSize - 1) / blockSize * blockSize }

// countingWriter counts what is written through it to w, or discards it
// when w is nil.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n := len(p)
	var err error
	if c.w != nil {
		n, err = c.w.Write(p)
	}
	c.n += int64(n)
	return n, err
}

// layoutEntry is one entry after manifest.json, as the writer emits it.
type layoutEntry struct {
	name       string
	typ        byte
	mode, size int64
}

// layoutEntries lists the entries after manifest.json in tar order: the
// top-level files, packages/ with oci-layout and index.json, and the blobs
// (sorted by digest). A negative layout or index size leaves that file
// out, for an unpacked image that lacks it.
func layoutEntries(files []File, layoutSize, indexSize int64, blobs []layoutBlob) []layoutEntry {
	var out []layoutEntry
	for _, f := range files {
		out = append(out, layoutEntry{f.Name, tar.TypeReg, f.Mode, f.Size})
	}
	out = append(out, layoutEntry{PackagesDir + "/", tar.TypeDir, modeDir, 0})
	if layoutSize >= 0 {
		out = append(out, layoutEntry{OCILayoutFile, tar.TypeReg, modeFile, layoutSize})
	}
	if indexSize >= 0 {
		out = append(out, layoutEntry{IndexFile, tar.TypeReg, modeFile, indexSize})
	}
	out = append(out, layoutEntry{BlobsDir + "/", tar.TypeDir, modeDir, 0}, layoutEntry{BlobsSHA256 + "/", tar.TypeDir, modeDir, 0})
	for _, b := range blobs {
		out = append(out, layoutEntry{BlobsSHA256 + "/" + b.hex, tar.TypeReg, modeFile, b.size})
	}
	return out
}

type layoutBlob struct {
	hex  string
	size int64
}

// tarLength is the length of a tar of a manifest.json of metaSize bytes
// followed by entries and the end-of-archive marker.
func tarLength(metaSize int64, entries []layoutEntry, mtime time.Time) (int64, error) {
	total := int64(tarEnd)
	n, err := entryLength(header(ManifestFile, tar.TypeReg, modeFile, metaSize, mtime))
	if err != nil {
		return 0, err
	}
	total += n
	for _, e := range entries {
		n, err := entryLength(header(e.name, e.typ, e.mode, e.size, mtime))
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// unpackedLength is the length of the tar that the layout's files in an
// unpacked image make up, counting only what is there: a tarball cut short
// and unpacked (`tar -xf` keeps what it got) makes a shorter one.
func unpackedLength(dir string, meta *Meta) (int64, error) {
	size := func(name string) (int64, error) {
		fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(name)))
		if errors.Is(err, os.ErrNotExist) {
			return -1, nil
		}
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	}
	var files []File
	for _, f := range meta.Files {
		n, err := size(f.Name)
		if err != nil {
			return 0, err
		}
		if n >= 0 {
			f.Size = n
			files = append(files, f)
		}
	}
	metaSize, err1 := size(ManifestFile)
	layoutSize, err2 := size(OCILayoutFile)
	indexSize, err3 := size(IndexFile)
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, err
	}
	entries, err := os.ReadDir(filepath.Join(dir, filepath.FromSlash(BlobsSHA256)))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	var blobs []layoutBlob
	for _, e := range entries {
		if len(e.Name()) != 64 || !isLowerHex(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return 0, err
		}
		blobs = append(blobs, layoutBlob{e.Name(), info.Size()})
	}
	return tarLength(max(metaSize, 0), layoutEntries(files, layoutSize, indexSize, blobs), DefaultModTime)
}

// checkUnpacked refuses a directory that holds fewer bytes than the image
// it was unpacked from. More is not refused here: a stray file in blobs/
// harms nothing, and the digest checks that follow catch any other damage.
func checkUnpacked(dir string, meta *Meta) error {
	got, err := unpackedLength(dir, meta)
	if err != nil {
		return fmt.Errorf("measuring %s: %w", dir, err)
	}
	if got < meta.ArchiveSize {
		return &SizeError{Path: dir, Want: meta.ArchiveSize, Got: got, Unpacked: true}
	}
	return nil
}
