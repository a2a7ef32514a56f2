package clusterimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestOpenErrors(t *testing.T) {
	f := newFixture(t, 128)
	valid := readEntries(t, f.write(t))
	gz := func() []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte("x"))
		w.Close()
		return b.Bytes()
	}()
	withMeta := func(meta string) []tarEntry {
		es := slices.Clone(valid)
		es[0].data = []byte(meta)
		return es
	}
	tests := []struct {
		name    string
		entries []tarEntry
		raw     []byte
		want    string
	}{
		{"empty file", nil, []byte{}, "empty archive"},
		{"gzip", nil, gz, "gzip-compressed"},
		{"not a tar", nil, bytes.Repeat([]byte("hello "), 200), "not a cluster image"},
		{"manifest not first", append([]tarEntry{valid[1]}, valid[0]), nil, `first entry is "app.yaml"`},
		{"future version", withMeta(`{"formatVersion": 3}`), nil, "unsupported cluster image format version 3"},
		{"version 1", withMeta(`{"formatVersion": 1}`), nil, "unsupported cluster image format version 1"},
		{"no version", withMeta(`{}`), nil, "unsupported cluster image format version 0"},
		{"bad json", withMeta(`{"formatVersion": 2,`), nil, "parsing manifest.json"},
		{"unknown field", withMeta(`{"formatVersion": 2, "name": "a", "version": "1", "extra": 1}`), nil, "unknown field"},
		{"no files", withMeta(`{"formatVersion": 2, "name": "a", "version": "1", "archiveSize": 9000}`), nil, "lists 0 files"},
		{"symlink manifest", []tarEntry{{hdr: tar.Header{Name: ManifestFile, Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}}}, nil, "tar type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "img.tar")
			if tc.raw != nil {
				must(t, os.WriteFile(path, tc.raw, 0o644))
			} else {
				writeEntries(t, path, tc.entries)
			}
			_, err := Open(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestArchiveSizeRequired(t *testing.T) {
	_, err := parseMeta([]byte(`{"formatVersion": 2, "name": "a", "version": "1"}`))
	if err == nil || !strings.Contains(err.Error(), "archiveSize 0") {
		t.Fatalf("err = %v", err)
	}
}

func TestTruncated(t *testing.T) {
	f := newFixture(t, 4096)
	path := f.write(t)
	full, err := os.ReadFile(path)
	must(t, err)
	n := len(full)
	for _, cut := range []int{0, 100, 512, 2048, n / 3, n / 2, n - 2048, n - 1025, n - 512 - 1} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "cut.tar")
			must(t, os.WriteFile(p, full[:cut], 0o644))
			if err := Verify(context.Background(), p); err == nil {
				t.Error("Verify accepted a truncated image")
			}
			out := filepath.Join(dir, "out")
			if err := Unpack(context.Background(), p, out); err == nil {
				t.Error("Unpack accepted a truncated image")
			}
			if got := listDir(t, dir); !slices.Equal(got, []string{"cut.tar"}) {
				t.Errorf("failed unpack left %v", got)
			}
		})
	}
}

// TestTrailer: archive/tar takes a missing end-of-archive marker for a
// clean end, and tar(1) ignores what follows the marker; the recorded
// length refuses both, as a copy that is not the file tele wrote.
func TestTrailer(t *testing.T) {
	f := newFixture(t, 1024)
	path := f.write(t)
	full, err := os.ReadFile(path)
	must(t, err)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"complete", full, ""},
		{"record padding", append(slices.Clone(full), make([]byte, 10240)...), "10240 bytes appended"},
		{"no marker", full[:len(full)-1024], "1024 of its"},
		{"half marker", full[:len(full)-512], "512 of its"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "img.tar")
			must(t, os.WriteFile(p, tc.data, 0o644))
			err := Verify(context.Background(), p)
			if tc.want == "" {
				must(t, err)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestLength: every reader refuses a file cut short or with bytes appended
// from manifest.json alone, naming how many bytes are missing or extra.
func TestLength(t *testing.T) {
	f := newFixture(t, 4096)
	path := f.write(t)
	full, err := os.ReadFile(path)
	must(t, err)
	n := int64(len(full))
	img, err := Open(path)
	must(t, err)
	if img.Meta.ArchiveSize != n {
		t.Fatalf("archiveSize = %d, the file has %d bytes", img.Meta.ArchiveSize, n)
	}
	first := blockSize + padded(int64(len(readEntries(t, path)[0].data)))
	for _, tc := range []struct {
		name    string
		data    []byte
		missing int64
		want    string
	}{
		{"manifest.json only", full[:first], n - first, fmt.Sprintf("truncated: %d of its %d bytes are missing (the file has %d)", n-first, n, first)},
		{"half", full[:n/2], n - n/2, "truncated"},
		{"one byte short", full[:n-1], 1, "truncated: 1 of its"},
		{"one byte more", append(slices.Clone(full), 'x'), -1, "1 bytes appended"},
		{"a copy appended", append(slices.Clone(full), full...), -n, fmt.Sprintf("%d bytes appended", n)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "copy.tar")
			must(t, os.WriteFile(p, tc.data, 0o644))
			_, openErr := Open(p)
			for name, err := range map[string]error{
				"Open":   openErr,
				"Verify": Verify(context.Background(), p),
				"Unpack": Unpack(context.Background(), p, filepath.Join(dir, "out")),
			} {
				var se *SizeError
				if !errors.As(err, &se) || se.Missing() != tc.missing || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: err = %v, want a SizeError with %d missing, saying %q", name, err, tc.missing, tc.want)
				}
			}
			if got := listDir(t, dir); !slices.Equal(got, []string{"copy.tar"}) {
				t.Errorf("refused unpack left %v", got)
			}
		})
	}
}

func TestHostile(t *testing.T) {
	f := newFixture(t, 256)
	valid := readEntries(t, f.write(t))
	outside := filepath.Join(t.TempDir(), "escaped") // absolute target an attacker aims at
	reg := func(name, data string) tarEntry {
		return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}, data: []byte(data)}
	}
	insert := func(at int, e ...tarEntry) []tarEntry { return slices.Insert(slices.Clone(valid), at, e...) }
	replace := func(at int, e tarEntry) []tarEntry {
		es := slices.Clone(valid)
		es[at] = e
		return es
	}
	last := len(valid) - 1
	lastBlob := valid[last]
	corrupted := lastBlob
	corrupted.data = bytes.Clone(corrupted.data)
	corrupted.data[0] ^= 0xff
	tests := []struct {
		name    string
		entries []tarEntry
		want    string
	}{
		{"dotdot first", []tarEntry{reg("../x", "evil")}, "first entry"},
		{"dotdot", insert(2, reg("../x", "evil")), "unexpected entry"},
		{"absolute", insert(2, reg(outside, "evil")), "unexpected entry"},
		{"absolute blob", append(slices.Clone(valid), reg(outside+"/packages/blobs/sha256/x", "evil")), "unexpected entry"},
		{"dotdot blob", append(slices.Clone(valid), reg("packages/blobs/sha256/../../../x", "evil")), "unexpected entry"},
		{"symlink to root", replace(last, tarEntry{hdr: tar.Header{Name: lastBlob.hdr.Name, Typeflag: tar.TypeSymlink, Linkname: "/"}}), "tar type"},
		{"symlinked packages dir", replace(7, tarEntry{hdr: tar.Header{Name: "packages/", Typeflag: tar.TypeSymlink, Linkname: filepath.Dir(outside)}}), "tar type"},
		{"hardlink", replace(last, tarEntry{hdr: tar.Header{Name: lastBlob.hdr.Name, Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}}), "tar type"},
		{"device", replace(last, tarEntry{hdr: tar.Header{Name: lastBlob.hdr.Name, Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}), "tar type"},
		{"blob content mismatch", replace(last, corrupted), "digest mismatch for blob sha256:"},
		{"gravity replaced", replace(6, tarEntry{hdr: valid[6].hdr, data: []byte("#!/bin/sh\nrm -rf /\n")}), "gravity"},
		{"setuid gravity", replace(6, tarEntry{hdr: withMode(valid[6].hdr, 0o4755), data: valid[6].data}), "mode"},
		{"duplicate blob", append(slices.Clone(valid), lastBlob), "out of order or duplicated"},
		{"extra file", append(slices.Clone(valid), reg("evil", "x")), "unexpected entry"},
		{"unreferenced blob", append(slices.Clone(valid), reg("packages/blobs/sha256/ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "")), "digest mismatch"},
		{"missing blob", valid[:last], "missing"},
		{"reordered files", slices.Concat(valid[:1], valid[2:3], valid[1:2], valid[3:]), "unexpected entry"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(t.TempDir(), "hostile.tar")
			writeEntries(t, src, tc.entries)
			err := Unpack(context.Background(), src, filepath.Join(dir, "out"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Unpack err = %v, want it to contain %q", err, tc.want)
			}
			if err := Verify(context.Background(), src); err == nil {
				t.Fatal("Verify accepted a hostile image")
			}
			if got := listDir(t, dir); len(got) != 0 {
				t.Fatalf("failed unpack left %v", got)
			}
			if _, err := os.Lstat(outside); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("something was written at %s", outside)
			}
			if _, err := os.Lstat(filepath.Join(filepath.Dir(dir), "x")); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("something was written beside the target")
			}
		})
	}
}

// TestUnreferencedBlob: a blob whose content matches its name but that no
// root reaches is still rejected: the writer never produces one.
func TestUnreferencedBlob(t *testing.T) {
	f := newFixture(t, 256)
	es := readEntries(t, f.write(t))
	// The empty blob, inserted where it sorts, so that only the
	// reachability check can reject it.
	const empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	e := tarEntry{hdr: tar.Header{Name: BlobsSHA256 + "/" + empty, Typeflag: tar.TypeReg, Mode: 0o644}}
	i := slices.IndexFunc(es, func(x tarEntry) bool {
		return strings.HasPrefix(x.hdr.Name, BlobsSHA256+"/") && x.hdr.Name > e.hdr.Name
	})
	if i < 0 {
		i = len(es)
	}
	es = slices.Insert(es, i, e)
	path := filepath.Join(t.TempDir(), "img.tar")
	writeEntries(t, path, es)
	err := Verify(context.Background(), path)
	if err == nil || !strings.Contains(err.Error(), "unexpected blob") {
		t.Fatalf("err = %v", err)
	}
}

func withMode(h tar.Header, mode int64) tar.Header {
	h.Mode = mode
	return h
}

func TestUnpackTarget(t *testing.T) {
	f := newFixture(t, 128)
	path := f.write(t)
	t.Run("non-empty dir refused", func(t *testing.T) {
		dir := t.TempDir()
		must(t, os.WriteFile(filepath.Join(dir, "keep"), []byte("x"), 0o644))
		err := Unpack(context.Background(), path, dir)
		if err == nil || !strings.Contains(err.Error(), "not empty") {
			t.Fatalf("err = %v", err)
		}
		if got := listDir(t, dir); !slices.Equal(got, []string{"keep"}) {
			t.Fatalf("dir = %v", got)
		}
	})
	t.Run("empty dir accepted", func(t *testing.T) {
		dir := t.TempDir()
		must(t, Unpack(context.Background(), path, dir))
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o755 {
			t.Fatalf("dir: %v %v", fi, err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		parent := t.TempDir()
		if err := Unpack(ctx, path, filepath.Join(parent, "out")); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if err := Verify(ctx, path); !errors.Is(err, context.Canceled) {
			t.Fatalf("Verify err = %v", err)
		}
		if got := listDir(t, parent); len(got) != 0 {
			t.Fatalf("cancelled unpack left %v", got)
		}
	})
}
