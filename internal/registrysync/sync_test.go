package registrysync

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestSync(t *testing.T) {
	src := httptest.NewServer(registry.New())
	defer src.Close()
	dst := httptest.NewServer(registry.New())
	defer dst.Close()
	from, to := strings.TrimPrefix(src.URL, "http://"), strings.TrimPrefix(dst.URL, "http://")
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := random.Index(512, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"alpine:3.3", "alpine:3.4", "gravitational/pause:0.1.0"} {
		if err := remote.Write(mustRef(t, from+"/"+ref), img); err != nil {
			t.Fatal(err)
		}
	}
	if err := remote.WriteIndex(mustRef(t, from+"/multi:1"), idx); err != nil {
		t.Fatal(err)
	}
	n, err := Sync(context.Background(), from, to, http.DefaultTransport)
	if err != nil || n != 4 {
		t.Fatalf("Sync = %d, %v", n, err)
	}
	for ref, want := range map[string]string{"alpine:3.4": digest(t, img), "gravitational/pause:0.1.0": digest(t, img), "multi:1": digestIdx(t, idx)} {
		d, err := remote.Head(mustRef(t, to+"/"+ref))
		if err != nil || d.Digest.String() != want {
			t.Errorf("%s in the destination: %v, %v; want %s", ref, d, err, want)
		}
	}
	// Again: nothing new, nothing fails.
	if n, err := Sync(context.Background(), from, to, http.DefaultTransport); err != nil || n != 4 {
		t.Fatalf("second Sync = %d, %v", n, err)
	}
	if _, err := Sync(context.Background(), "127.0.0.1:1", to, http.DefaultTransport); err == nil {
		t.Fatal("a source that does not answer synced")
	}
}

func digest(t *testing.T, img v1.Image) string {
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func digestIdx(t *testing.T, idx v1.ImageIndex) string {
	h, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func mustRef(t *testing.T, s string) name.Reference {
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
