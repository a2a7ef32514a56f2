package clusterimage

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVerifyDir(t *testing.T) {
	f := newFixture(t, 2048)
	path := f.write(t)
	unpacked := func(t *testing.T) string {
		dir := filepath.Join(t.TempDir(), "image")
		must(t, Unpack(context.Background(), path, dir))
		return dir
	}
	firstBlob := func(t *testing.T, dir string) string {
		names, err := filepath.Glob(filepath.Join(dir, BlobsDir, "sha256", "*"))
		must(t, err)
		// The largest blob is a layer, not a manifest.
		var best string
		var size int64
		for _, n := range names {
			fi, _ := os.Stat(n)
			if fi.Size() > size {
				best, size = n, fi.Size()
			}
		}
		return best
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   string
	}{
		{name: "whole", damage: func(*testing.T, string) {}},
		{name: "truncated blob", want: "truncated", damage: func(t *testing.T, dir string) {
			must(t, os.Truncate(firstBlob(t, dir), 100))
		}},
		{name: "missing blob", want: "incomplete cluster image", damage: func(t *testing.T, dir string) {
			must(t, os.Remove(firstBlob(t, dir)))
		}},
		{name: "flipped byte", want: "damaged", damage: func(t *testing.T, dir string) {
			b := firstBlob(t, dir)
			data, err := os.ReadFile(b)
			must(t, err)
			data[len(data)/2] ^= 1
			must(t, os.WriteFile(b, data, 0o644))
		}},
		{name: "gravity binary cut", want: "truncated", damage: func(t *testing.T, dir string) {
			must(t, os.Truncate(filepath.Join(dir, GravityBinary), 1))
		}},
		{name: "no manifest", want: "not an unpacked cluster image", damage: func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, ManifestFile)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := unpacked(t)
			tc.damage(t, dir)
			meta, err := VerifyDir(context.Background(), dir)
			if tc.want == "" {
				if err != nil || meta.Name == "" {
					t.Fatalf("VerifyDir: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestVerifyDirCutTarball: `tar -xf` of a cut tarball keeps what it got,
// the last file short; VerifyDir says so from sizes alone, with about as
// many bytes missing as the copy lacked.
func TestVerifyDirCutTarball(t *testing.T) {
	f := newFixture(t, 8192)
	full, err := os.ReadFile(f.write(t))
	must(t, err)
	n := int64(len(full))
	for _, cut := range []int64{n / 3, n / 2, n - 2000} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			dir := t.TempDir()
			untarLikeTar(t, full[:cut], dir)
			_, err := VerifyDir(context.Background(), dir)
			var se *SizeError
			if !errors.As(err, &se) || !se.Unpacked {
				t.Fatalf("err = %v, want an unpacked SizeError", err)
			}
			// What was unpacked is measured as a tar: off from the cut by
			// less than the partial entry's padding, a header and the end
			// marker.
			if d := se.Missing() - (n - cut); d < -3*blockSize || d > 3*blockSize {
				t.Fatalf("missing = %d, the copy lacked %d", se.Missing(), n-cut)
			}
			if !strings.Contains(err.Error(), "bytes are missing") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// untarLikeTar extracts what it can of data into dir and keeps a partial
// last file, as tar(1) does with a cut archive.
func untarLikeTar(t *testing.T, data []byte, dir string) {
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err != nil {
			return
		}
		p := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		if hdr.Typeflag == tar.TypeDir {
			must(t, os.MkdirAll(p, 0o755))
			continue
		}
		out, err := os.Create(p)
		must(t, err)
		_, copyErr := io.Copy(out, tr)
		must(t, out.Close())
		if copyErr != nil {
			return
		}
	}
}
