package store

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomImage(t testing.TB, size int64, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func mustDigest(t testing.TB, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// platformIndex builds an index with one random image per platform.
func platformIndex(t testing.TB, platforms ...v1.Platform) (v1.ImageIndex, map[string]v1.Hash) {
	t.Helper()
	var adds []mutate.IndexAddendum
	want := map[string]v1.Hash{}
	for _, p := range platforms {
		img := randomImage(t, 512, 1)
		want[p.String()] = mustDigest(t, img)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...), want
}

var amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}

func TestOpenCreatesLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "store")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"oci-layout", "index.json", "blobs/sha256"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	if _, err := s.PutImage(context.Background(), "alpine:3.3", randomImage(t, 100, 1)); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	es, err := s2.Entries()
	if err != nil || len(es) != 1 {
		t.Fatalf("reopen: entries %v, %v", es, err)
	}
	if s2.Path() != dir {
		t.Errorf("Path() = %s, want %s", s2.Path(), dir)
	}
}

func TestImageLookup(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	img := randomImage(t, 1024, 2)
	d := mustDigest(t, img)
	e, err := s.PutImage(ctx, "alpine:3.3", img)
	if err != nil {
		t.Fatal(err)
	}
	if e.Ref != "alpine:3.3" || e.Kind != KindImage || e.Digest != d {
		t.Fatalf("entry = %+v", e)
	}
	if got := e.Annotations[AnnotationCanonical]; got != "index.docker.io/library/alpine:3.3" {
		t.Errorf("canonical annotation = %q", got)
	}
	tests := []struct {
		ref     string
		wantErr bool
	}{
		{"alpine:3.3", false},
		{"index.docker.io/library/alpine:3.3", false},
		{"docker.io/library/alpine:3.3", false},
		{"alpine@" + d.String(), false},
		{"docker.io/alpine@" + d.String(), false},
		{"alpine:3.4", true},
		{"busybox@" + d.String(), true},
		{"alpine", true},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, _, err := s.Image(tt.ref, amd64)
			if tt.wantErr {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("err = %v, want ErrNotFound", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if mustDigest(t, got) != d {
				t.Errorf("digest = %s, want %s", mustDigest(t, got), d)
			}
		})
	}
}

func TestImageRoundTripsLayers(t *testing.T) {
	s := newStore(t)
	img := randomImage(t, 4096, 3)
	if _, err := s.PutImage(context.Background(), "example.com/a/b:1", img); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.Image("example.com/a/b:1", amd64)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		h, _, err := v1.SHA256(rc)
		rc.Close()
		if err != nil || h != mustDigest(t, l) {
			t.Errorf("layer content %s != digest %s (%v)", h, mustDigest(t, l), err)
		}
	}
	cfg, err := got.ConfigName()
	if err != nil || cfg != mustConfigName(t, img) {
		t.Errorf("config = %s, %v", cfg, err)
	}
}

func mustConfigName(t testing.TB, img v1.Image) v1.Hash {
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestPutReplacesSameRef(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	second := randomImage(t, 100, 1)
	for _, put := range []struct {
		ref string
		img v1.Image
	}{
		{"alpine:3.3", randomImage(t, 100, 1)},
		{"docker.io/library/alpine:3.3", randomImage(t, 100, 1)},
		{"alpine:3.3", second},
	} {
		if _, err := s.PutImage(ctx, put.ref, put.img); err != nil {
			t.Fatal(err)
		}
	}
	es, err := s.Entries()
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Digest != mustDigest(t, second) {
		t.Fatalf("entries = %+v, want one entry with the last image", es)
	}
}

func TestEntriesSortedWithSize(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	img := randomImage(t, 1000, 2)
	for _, ref := range []string{"zeta:1", "alpha:1", "mid:1"} {
		if _, err := s.PutImage(ctx, ref, img); err != nil {
			t.Fatal(err)
		}
	}
	es, err := s.Entries()
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, e := range es {
		refs = append(refs, e.Ref)
	}
	if strings.Join(refs, ",") != "alpha:1,mid:1,zeta:1" {
		t.Errorf("order = %v", refs)
	}
	m, _ := img.Manifest()
	raw, _ := img.RawManifest()
	want := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		want += l.Size
	}
	if es[0].Size != want {
		t.Errorf("size = %d, want %d", es[0].Size, want)
	}
}

func TestIndexResolvesPlatform(t *testing.T) {
	s := newStore(t)
	arm := v1.Platform{OS: "linux", Architecture: "arm64"}
	idx, want := platformIndex(t, amd64, arm)
	e, err := s.PutIndex(context.Background(), "multi:1", idx)
	if err != nil {
		t.Fatal(err)
	}
	if e.MediaType != types.OCIImageIndex || e.Digest != mustDigest(t, idx) {
		t.Fatalf("entry = %+v", e)
	}
	for _, p := range []v1.Platform{amd64, arm} {
		img, _, err := s.Image("multi:1", p)
		if err != nil {
			t.Fatal(err)
		}
		if got := mustDigest(t, img); got != want[p.String()] {
			t.Errorf("%s: digest %s, want %s", p, got, want[p.String()])
		}
		// A platform manifest is also reachable by its own digest.
		img, _, err = s.Image("multi@"+want[p.String()].String(), amd64)
		if err != nil || mustDigest(t, img) != want[p.String()] {
			t.Errorf("by child digest: %v", err)
		}
	}
	if _, _, err := s.Image("multi:1", v1.Platform{OS: "linux", Architecture: "s390x"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing platform: err = %v", err)
	}
}

func TestWriteBlobVerifies(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	content := []byte("hello")
	h, n, _ := v1.SHA256(bytes.NewReader(content))
	other, _, _ := v1.SHA256(strings.NewReader("other"))
	tests := []struct {
		name string
		want v1.Hash
		size int64
		ok   bool
	}{
		{"good", h, n, true},
		{"unknown size", h, -1, true},
		{"wrong digest", other, n, false},
		{"short size", h, n - 1, false},
		{"long size", h, n + 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			err := s.WriteBlob(ctx, tt.want, tt.size, bytes.NewReader(content))
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrDigestMismatch) {
				t.Errorf("err = %v, want ErrDigestMismatch", err)
			}
			if s.HasBlob(tt.want, -1) != tt.ok {
				t.Errorf("blob present = %v", !tt.ok)
			}
			assertNoTemp(t, s)
		})
	}
	if err := s.WriteBlob(ctx, v1.Hash{Algorithm: "sha256", Hex: "../../x"}, 1, strings.NewReader("x")); err == nil {
		t.Error("bad digest accepted")
	}
}

func assertNoTemp(t *testing.T, s *Store) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(s.Path(), "blobs", "sha256"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp") {
			t.Errorf("temp file left: %s", e.Name())
		}
	}
}

func TestConcurrentPutsAcrossGoroutines(t *testing.T) {
	s := newStore(t)
	img := randomImage(t, 2048, 2)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.PutImage(context.Background(), fmt.Sprintf("img%d:1", i), img)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	es, _ := s.Entries()
	if len(es) != 20 {
		t.Errorf("entries = %d, want 20", len(es))
	}
}

// TestConcurrentPutsAcrossProcesses re-runs this test binary as writers;
// without the flock, the read-modify-write of index.json would lose entries.
func TestConcurrentPutsAcrossProcesses(t *testing.T) {
	if dir := os.Getenv("GRAVITY_STORE_HELPER_DIR"); dir != "" {
		helperPut(t, dir, os.Getenv("GRAVITY_STORE_HELPER_ID"))
		return
	}
	s := newStore(t)
	const procs, per = 4, 15
	var cmds []*exec.Cmd
	for i := 0; i < procs; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestConcurrentPutsAcrossProcesses$")
		cmd.Env = append(os.Environ(), "GRAVITY_STORE_HELPER_DIR="+s.Path(), fmt.Sprintf("GRAVITY_STORE_HELPER_ID=%d", i))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	es, err := s.Entries()
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != procs*per {
		t.Errorf("entries = %d, want %d", len(es), procs*per)
	}
}

func helperPut(t *testing.T, dir, id string) {
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for j := 0; j < 15; j++ {
		meta := PackageMeta{Name: "p", Version: fmt.Sprint(j)}
		if _, err := s.PutPackage(context.Background(), fmt.Sprintf("gravitational.io/p%s-%d:1", id, j), meta, strings.NewReader(id)); err != nil {
			t.Fatal(err)
		}
	}
}

func tarBytes(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// failAtEOF is a reader that, like go-containerregistry's verifying reader,
// reports a failed check instead of io.EOF.
type failAtEOF struct{ r io.Reader }

func (f failAtEOF) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errors.New("error verifying sha256 checksum")
	}
	return n, err
}

func TestWriteBlobVerifiedSource(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("layer bytes")
	h, _, err := v1.SHA256(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithVerifiedSource(context.Background())
	if err := s.WriteBlob(ctx, h, int64(len(data)), failAtEOF{bytes.NewReader(data)}); err == nil {
		t.Fatal("a source that failed its own check was stored")
	}
	if s.HasBlob(h, int64(len(data))) {
		t.Fatal("blob kept after the source's check failed")
	}
	if err := s.WriteBlob(ctx, h, int64(len(data)+1), bytes.NewReader(data)); err == nil {
		t.Fatal("short blob accepted from a verified source")
	}
	if err := s.WriteBlob(ctx, h, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if !s.HasBlob(h, int64(len(data))) {
		t.Fatal("blob missing")
	}
}
