package vendor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/opengravity/gravity/internal/store"
)

// testRegistry is an in-process registry that counts requests.
type testRegistry struct {
	*httptest.Server
	host     string
	requests atomic.Int64
	mu       sync.Mutex
	blobGets map[string]int // path → GET count
}

func newRegistry(t testing.TB, wrap func(http.Handler) http.Handler) *testRegistry {
	t.Helper()
	r := &testRegistry{blobGets: map[string]int{}}
	var h http.Handler = registry.New(registry.Logger(nopLogger()))
	if wrap != nil {
		h = wrap(h)
	}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/") {
			r.mu.Lock()
			r.blobGets[req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]]++
			r.mu.Unlock()
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(r.Close)
	r.host = strings.TrimPrefix(r.URL, "http://")
	return r
}

func (r *testRegistry) push(t testing.TB, repoTag string, x any) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(r.host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	switch x := x.(type) {
	case v1.Image:
		err = remote.Write(ref, x)
	case v1.ImageIndex:
		err = remote.WriteIndex(ref, x)
	}
	if err != nil {
		t.Fatal(err)
	}
	r.requests.Store(0)
	r.mu.Lock()
	r.blobGets = map[string]int{}
	r.mu.Unlock()
	return ref
}

func newStore(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomImage(t testing.TB, size, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(size, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digest(t testing.TB, x interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	d, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func vendorOne(t testing.TB, o Options, ref string, users ...string) (Result, error) {
	t.Helper()
	res, err := Vendor(context.Background(), o, []Request{{Ref: ref, Users: users}})
	return res[0], err
}

func TestVendorByTagAndDigest(t *testing.T) {
	reg := newRegistry(t, nil)
	img := randomImage(t, 2048, 3)
	d := digest(t, img)
	reg.push(t, "team/app:1.0", img)
	tests := []struct {
		name, ref string
	}{
		{"tag", reg.host + "/team/app:1.0"},
		{"digest", reg.host + "/team/app@" + d.String()},
		{"tag and digest", reg.host + "/team/app:1.0@" + d.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			res, err := vendorOne(t, Options{Store: s}, tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			if res.Digest != d || res.From != "remote "+reg.host || res.Ref != tt.ref {
				t.Fatalf("result = %+v", res)
			}
			got, e, err := s.Image(tt.ref, v1.Platform{OS: "linux", Architecture: "amd64"})
			if err != nil {
				t.Fatal(err)
			}
			if digest(t, got) != d || e.Ref != tt.ref {
				t.Errorf("stored %s as %q", digest(t, got), e.Ref)
			}
		})
	}
}

func TestVendorIndexResolvesPlatform(t *testing.T) {
	reg := newRegistry(t, nil)
	want := map[string]v1.Hash{}
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		img := randomImage(t, 512, 1)
		want[arch] = digest(t, img)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.AppendManifests(empty.Index, adds...)
	reg.push(t, "multi:1", idx)
	for arch, d := range want {
		t.Run(arch, func(t *testing.T) {
			s := newStore(t)
			o := Options{Store: s, Platform: v1.Platform{OS: "linux", Architecture: arch}}
			res, err := vendorOne(t, o, reg.host+"/multi:1")
			if err != nil {
				t.Fatal(err)
			}
			if res.Digest != d {
				t.Errorf("digest %s, want %s", res.Digest, d)
			}
			desc, err := s.Descriptor(reg.host + "/multi:1")
			if err != nil {
				t.Fatal(err)
			}
			if desc.Digest != d || desc.Annotations[AnnotationIndexDigest] != digest(t, idx).String() {
				t.Errorf("entry %s annotations %v", desc.Digest, desc.Annotations)
			}
		})
	}
}

func TestVendorMirrorFirst(t *testing.T) {
	origin := newRegistry(t, nil)
	mirror := newRegistry(t, nil)
	img := randomImage(t, 1024, 2)
	origin.push(t, "library/app:1", img)
	mirror.push(t, "library/app:1", img)
	s := newStore(t)
	res, err := vendorOne(t, Options{Store: s, Mirrors: []string{mirror.host}}, origin.host+"/library/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if res.From != "remote "+mirror.host || origin.requests.Load() != 0 || mirror.requests.Load() == 0 {
		t.Errorf("from %s; origin requests %d, mirror %d", res.From, origin.requests.Load(), mirror.requests.Load())
	}
	// A mirror without the image falls through to the origin.
	empty := newRegistry(t, nil)
	res, err = vendorOne(t, Options{Store: newStore(t), Mirrors: []string{empty.host}}, origin.host+"/library/app:1")
	if err != nil || res.From != "remote "+origin.host || empty.requests.Load() == 0 {
		t.Errorf("fallthrough: %+v, %v", res, err)
	}
}

type staticKeychain struct{ user, pass string }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return &authn.Basic{Username: k.user, Password: k.pass}, nil
}

func basicAuth(user, pass string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

func TestVendorAuth(t *testing.T) {
	reg := newRegistry(t, basicAuth("alice", "secret"))
	img := randomImage(t, 512, 1)
	ref, _ := name.ParseReference(reg.host + "/private:1")
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "alice", Password: "secret"})); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		kc   authn.Keychain
		ok   bool
	}{
		{"right credentials", staticKeychain{"alice", "secret"}, true},
		{"wrong credentials", staticKeychain{"alice", "wrong"}, false},
		{"anonymous", authn.NewMultiKeychain(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := vendorOne(t, Options{Store: newStore(t), Keychain: tt.kc}, reg.host+"/private:1")
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "authentication failed for registry "+reg.host) ||
				!strings.Contains(err.Error(), "docker login") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func closedPort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestVendorErrors(t *testing.T) {
	reg := newRegistry(t, nil)
	img := randomImage(t, 1024, 1)
	reg.push(t, "app:1", img)
	m, _ := img.Manifest()
	layer := m.Layers[0].Digest.String()
	corrupt := newRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+layer) {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				body := rec.Body.Bytes()
				body[len(body)/2] ^= 0xff
				w.WriteHeader(rec.Code)
				w.Write(body)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	corrupt.push(t, "app:1", img)
	dead := closedPort(t)
	tests := []struct {
		name    string
		o       Options
		ref     string
		kind    error
		wantMsg []string
	}{
		{"not found", Options{}, reg.host + "/nope:1", ErrNotFound,
			[]string{"image " + reg.host + "/nope:1", "charts/x: Pod/x", "was not found", "local store", "registry " + reg.host, "tele image load FILE"}},
		{"unreachable", Options{}, dead + "/app:1", ErrUnreachable, []string{"registry " + dead + " is unreachable"}},
		{"unreachable mirror then not found", Options{Mirrors: []string{dead}}, reg.host + "/nope:1", ErrUnreachable,
			[]string{"mirror " + dead, "is unreachable", "registry " + reg.host + ": not found"}},
		{"digest mismatch", Options{}, corrupt.host + "/app:1", ErrDigestMismatch, []string{"digest mismatch"}},
		{"offline", Options{Offline: true}, reg.host + "/app:1", ErrNotFound, []string{"not in the local store (offline)", "tele image load FILE"}},
		{"invalid reference", Options{}, "UPPER/Case::x", nil, []string{"invalid image reference"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Store = newStore(t)
			before := reg.requests.Load()
			_, err := vendorOne(t, tt.o, tt.ref, "charts/x: Pod/x")
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			if tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("err is not %v: %v", tt.kind, err)
			}
			for _, w := range tt.wantMsg {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if tt.o.Offline && reg.requests.Load() != before {
				t.Error("offline vendoring contacted a registry")
			}
			if es, _ := tt.o.Store.Entries(); len(es) != 0 {
				t.Errorf("failed vendoring left entries: %v", es)
			}
		})
	}
}

func TestVendorLocalHitMakesNoRequest(t *testing.T) {
	reg := newRegistry(t, nil)
	img := randomImage(t, 1024, 2)
	reg.push(t, "app:1", img)
	s := newStore(t)
	ref := reg.host + "/app:1"
	if _, err := vendorOne(t, Options{Store: s}, ref); err != nil {
		t.Fatal(err)
	}
	reg.requests.Store(0)
	for _, o := range []Options{{Store: s}, {Store: s, Offline: true}} {
		res, err := vendorOne(t, o, ref)
		if err != nil {
			t.Fatal(err)
		}
		if res.From != "local" || res.Digest != digest(t, img) {
			t.Errorf("result = %+v", res)
		}
	}
	if n := reg.requests.Load(); n != 0 {
		t.Errorf("%d requests for a local image", n)
	}
}

func TestVendorDedupesLayers(t *testing.T) {
	reg := newRegistry(t, nil)
	base := randomImage(t, 4096, 2)
	extra, _ := random.Layer(4096, "application/vnd.docker.image.rootfs.diff.tar.gzip")
	derived, err := mutate.AppendLayers(base, extra)
	if err != nil {
		t.Fatal(err)
	}
	reg.push(t, "base:1", base)
	reg.push(t, "derived:1", derived)
	s := newStore(t)
	for _, ref := range []string{"base:1", "derived:1"} {
		if _, err := vendorOne(t, Options{Store: s}, reg.host+"/"+ref); err != nil {
			t.Fatal(err)
		}
	}
	m, _ := base.Manifest()
	for _, l := range m.Layers {
		if n := reg.blobGets[l.Digest.String()]; n != 1 {
			t.Errorf("shared layer %s fetched %d times", l.Digest, n)
		}
	}
	if n := reg.blobGets[digest(t, extra).String()]; n != 1 {
		t.Errorf("new layer fetched %d times", n)
	}
}

func TestVendorParallel(t *testing.T) {
	reg := newRegistry(t, nil)
	shared := randomImage(t, 8192, 1)
	var reqs []Request
	want := map[string]v1.Hash{}
	for i := 0; i < 12; i++ {
		l, _ := random.Layer(2048, "application/vnd.docker.image.rootfs.diff.tar.gzip")
		img, err := mutate.AppendLayers(shared, l)
		if err != nil {
			t.Fatal(err)
		}
		ref := fmt.Sprintf("%s/img%d:1", reg.host, i)
		reg.push(t, fmt.Sprintf("img%d:1", i), img)
		want[ref] = digest(t, img)
		reqs = append(reqs, Request{Ref: ref}, Request{Ref: ref, Users: []string{"dup"}})
	}
	var events atomic.Int64
	o := Options{Store: newStore(t), Parallel: 4, Progress: func(Event) { events.Add(1) }}
	res, err := Vendor(context.Background(), o, reqs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Ref != reqs[i].Ref || r.Digest != want[r.Ref] {
			t.Errorf("result %d = %+v", i, r)
		}
	}
	m, _ := shared.Manifest()
	if n := reg.blobGets[m.Layers[0].Digest.String()]; n != 1 {
		t.Errorf("shared layer fetched %d times by parallel pulls", n)
	}
	if events.Load() < 36 {
		t.Errorf("only %d progress events", events.Load())
	}
	es, _ := o.Store.Entries()
	if len(es) != 12 {
		t.Errorf("%d entries, want 12", len(es))
	}
}

func TestMirrorRef(t *testing.T) {
	tests := []struct{ ref, mirror, want string }{
		{"alpine:3.3", "mirror:5000", "mirror:5000/library/alpine:3.3"},
		{"quay.io/a/b@sha256:" + strings.Repeat("a", 64), "m.local", "m.local/a/b@sha256:" + strings.Repeat("a", 64)},
		{"alpine", "mirror:5000/dockerhub", "mirror:5000/dockerhub/library/alpine:latest"},
	}
	for _, tt := range tests {
		r, _ := name.ParseReference(tt.ref)
		got, err := mirrorRef(r, tt.mirror)
		if err != nil || got.String() != tt.want {
			t.Errorf("mirrorRef(%s, %s) = %v, %v; want %s", tt.ref, tt.mirror, got, err, tt.want)
		}
	}
}
