package clusterimage

import (
	"context"
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
		{name: "missing blob", want: "incomplete", damage: func(t *testing.T, dir string) {
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
