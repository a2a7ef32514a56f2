package baseimage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opengravity/gravity/internal/store"
)

func writeBase(t *testing.T, dir, version, gravity string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gravity")
	if err := os.WriteFile(bin, []byte(gravity), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "gravity-"+version+".tar")
	err := Build(context.Background(), BuildOptions{Name: "gravity", Version: version, Kubernetes: "v1.37.2", Gravity: bin, Output: out})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func newFinder(t *testing.T, dirs ...string) *Finder {
	t.Helper()
	state := t.TempDir()
	s, err := store.Open(filepath.Join(state, "store"))
	if err != nil {
		t.Fatal(err)
	}
	return &Finder{Store: s, StateDir: state, Dirs: dirs}
}

func TestParseName(t *testing.T) {
	for _, tc := range []struct {
		in, name, version, err string
	}{
		{in: "gravity:0.1.0", name: "gravity", version: "0.1.0"},
		{in: "gravity:1.2.3-beta.1", name: "gravity", version: "1.2.3-beta.1"},
		{in: "gravity", err: "want name:version"},
		{in: ":1.0.0", err: "want name:version"},
		{in: "gravity:latest", err: "not semver"},
		{in: "gravity:1.0", err: "not semver"},
	} {
		name, version, err := ParseName(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseName(%q) err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || name != tc.name || version != tc.version {
			t.Errorf("ParseName(%q) = %q, %q, %v", tc.in, name, version, err)
		}
	}
}

func TestFindImportAndReimport(t *testing.T) {
	dir := t.TempDir()
	writeBase(t, dir, "0.1.0", "v1 binary")
	writeBase(t, dir, "0.2.0-rc.1", "rc binary")
	f := newFinder(t, dir)

	if _, err := f.Find("gravity", "9.9.9"); !errors.Is(err, ErrNotFound) ||
		!strings.Contains(err.Error(), "gravity:0.1.0") || !strings.Contains(err.Error(), "gravity:0.2.0-rc.1") {
		t.Fatalf("unknown version: err = %v, want ErrNotFound listing both versions", err)
	}
	img, err := f.Find("gravity", "0.1.0")
	if err != nil || img.InStore {
		t.Fatalf("Find = %+v, %v; want a file not yet imported", img, err)
	}
	if img, err = f.Import(context.Background(), img); err != nil {
		t.Fatal(err)
	}
	if img, err = f.Find("gravity", "0.1.0"); err != nil || !img.InStore {
		t.Fatalf("after import: %+v, %v", img, err)
	}
	assertBinary(t, f, img, "v1 binary")

	// Rebuilding the same version with another binary makes it stale.
	writeBase(t, dir, "0.1.0", "rebuilt binary")
	if img, err = f.Find("gravity", "0.1.0"); err != nil || img.InStore {
		t.Fatalf("rebuilt base still counts as imported: %+v, %v", img, err)
	}
	if img, err = f.Import(context.Background(), img); err != nil {
		t.Fatal(err)
	}
	assertBinary(t, f, img, "rebuilt binary")

	// The imported image stays usable when its file is gone.
	os.RemoveAll(dir)
	if img, err = f.Find("gravity", "0.1.0"); err != nil || !img.InStore {
		t.Fatalf("imported base lost with its file: %+v, %v", img, err)
	}
}

func assertBinary(t *testing.T, f *Finder, img Image, want string) {
	t.Helper()
	p, err := f.GravityBinary(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != want {
		t.Fatalf("gravity binary = %q, %v; want %q", got, err, want)
	}
}

func TestImportCorruptFileChangesNothing(t *testing.T) {
	dir := t.TempDir()
	file := writeBase(t, dir, "0.1.0", "binary")
	f := newFinder(t, dir)
	img, err := f.Find("gravity", "0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data[:len(data)-2048], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Import(context.Background(), img); err == nil {
		t.Fatal("truncated base image imported")
	}
	if entries, _ := os.ReadDir(filepath.Join(f.StateDir, "base")); len(entries) != 0 {
		t.Errorf("failed import left %v", entries)
	}
}
