// Package vendor gets the images an application needs into tele's local
// store: from the store itself first, then from registry mirrors, then from
// the image's own registry, and from nowhere else.
package vendor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/opengravity/gravity/internal/store"
)

// Annotations vendor adds to the store entries it creates.
const (
	AnnotationSource      = "io.gravity.vendor.source"       // the reference actually pulled
	AnnotationIndexDigest = "io.gravity.vendor.index-digest" // the multi-arch index the image was resolved from
)

// Options configure Vendor.
type Options struct {
	Store    *store.Store
	Platform v1.Platform    // default linux/amd64
	Mirrors  []string       // host[:port][/prefix], tried in order before an image's own registry
	Insecure []string       // registries allowed over plain HTTP or with self-signed TLS
	Offline  bool           // never contact any registry
	Parallel int            // images pulled at once, default 4
	Keychain authn.Keychain // default authn.DefaultKeychain
	Progress func(Event)    // optional; called from several goroutines
}

// Request is one image to vendor.
type Request struct {
	Ref   string
	Users []string // the resources that want it, for error messages
}

// Result says where an image came from.
type Result struct {
	Ref    string
	From   string // "local" or "remote <registry>"
	Digest v1.Hash
	Size   int64 // manifest + config + layers
}

// EventKind is the stage an Event reports.
type EventKind string

// Event kinds, in the order they happen for one image.
const (
	EventStarted  EventKind = "started"
	EventResolved EventKind = "resolved" // From is set
	EventProgress EventKind = "progress" // Done/Total bytes
	EventDone     EventKind = "done"     // Err is set on failure
)

// Event reports progress on one image.
type Event struct {
	Ref         string
	Kind        EventKind
	From        string
	Done, Total int64
	Err         error
}

// Vendor makes every requested image available in o.Store, resolved for
// o.Platform. Results are in request order; a request that failed has a
// zero Result, and the returned error joins one *Error per failed image.
func Vendor(ctx context.Context, o Options, reqs []Request) ([]Result, error) {
	if o.Store == nil {
		return nil, errors.New("vendor: no store")
	}
	o = o.withDefaults()
	v := &vendorer{o: o, plain: remote.DefaultTransport, insecure: insecureTransport()}
	uniq, order := mergeRequests(reqs)
	results := make([]Result, len(uniq))
	errs := make([]error, len(uniq))
	sem := make(chan struct{}, o.Parallel)
	var wg sync.WaitGroup
	for i, r := range uniq {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
				results[i], errs[i] = v.one(ctx, r)
			case <-ctx.Done():
				errs[i] = ctx.Err()
			}
		}()
	}
	wg.Wait()
	out := make([]Result, len(reqs))
	for i, u := range order {
		if errs[u] == nil {
			out[i] = results[u]
		}
	}
	return out, errors.Join(errs...)
}

func (o Options) withDefaults() Options {
	if o.Platform.OS == "" && o.Platform.Architecture == "" {
		o.Platform = v1.Platform{OS: "linux", Architecture: "amd64"}
	}
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	if o.Keychain == nil {
		o.Keychain = authn.DefaultKeychain
	}
	if o.Progress == nil {
		o.Progress = func(Event) {}
	}
	return o
}

// mergeRequests vendors each reference once, on behalf of all its users;
// order maps each request to its merged index.
func mergeRequests(reqs []Request) ([]Request, []int) {
	var uniq []Request
	seen := map[string]int{}
	order := make([]int, len(reqs))
	for i, r := range reqs {
		j, ok := seen[r.Ref]
		if !ok {
			j = len(uniq)
			seen[r.Ref] = j
			uniq = append(uniq, Request{Ref: r.Ref})
		}
		for _, u := range r.Users {
			if !slices.Contains(uniq[j].Users, u) {
				uniq[j].Users = append(uniq[j].Users, u)
			}
		}
		order[i] = j
	}
	return uniq, order
}

func insecureTransport() http.RoundTripper {
	t := remote.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // only for registries the user marked insecure
	return t
}

type vendorer struct {
	o               Options
	plain, insecure http.RoundTripper
}

// one vendors a single image, trying each source in turn.
func (v *vendorer) one(ctx context.Context, r Request) (Result, error) {
	v.o.Progress(Event{Ref: r.Ref, Kind: EventStarted})
	res, err := v.resolve(ctx, r)
	v.o.Progress(Event{Ref: r.Ref, Kind: EventDone, From: res.From, Done: res.Size, Total: res.Size, Err: err})
	return res, err
}

func (v *vendorer) resolve(ctx context.Context, r Request) (Result, error) {
	e := &Error{Ref: r.Ref, Users: r.Users, Offline: v.o.Offline}
	res, err := v.local(r.Ref)
	if err == nil {
		v.o.Progress(Event{Ref: r.Ref, Kind: EventResolved, From: res.From})
		return res, nil
	}
	e.Attempts = append(e.Attempts, Attempt{Where: "local store " + v.o.Store.Path(), Err: err})
	if v.o.Offline {
		return Result{}, e
	}
	sources, err := v.sources(r.Ref)
	if err != nil {
		return Result{}, fmt.Errorf("image %s: %w", r.Ref, err)
	}
	for _, src := range sources {
		res, err := v.pull(ctx, r.Ref, src)
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		e.Attempts = append(e.Attempts, Attempt{Where: src.where, Err: classify(err, src.registry)})
	}
	return Result{}, e
}

// local looks the image up in the store, for the wanted platform.
func (v *vendorer) local(ref string) (Result, error) {
	img, _, err := v.o.Store.Image(ref, v.o.Platform)
	if errors.Is(err, store.ErrNotFound) {
		return Result{}, &attemptError{ErrNotFound, "not found", err}
	}
	if err != nil {
		return Result{}, err
	}
	if !platformMatches(img, v.o.Platform) {
		return Result{}, &attemptError{ErrNotFound, fmt.Sprintf("not found for platform %s", v.o.Platform.String()), store.ErrNotFound}
	}
	return imageResult(ref, "local", img)
}

func platformMatches(img v1.Image, want v1.Platform) bool {
	cfg, err := img.ConfigFile()
	if err != nil || cfg.OS == "" {
		return true // images without a platform (scratch artefacts) run anywhere
	}
	p := cfg.Platform()
	return p == nil || p.Satisfies(v1.Platform{OS: want.OS, Architecture: want.Architecture})
}

func imageResult(ref, from string, img v1.Image) (Result, error) {
	d, err := img.Digest()
	if err != nil {
		return Result{}, err
	}
	size, err := imageSize(img)
	if err != nil {
		return Result{}, err
	}
	return Result{Ref: ref, From: from, Digest: d, Size: size}, nil
}

func imageSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	n, err := img.Size()
	if err != nil {
		return 0, err
	}
	n += m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}

// source is one registry to try for an image.
type source struct {
	ref      name.Reference
	registry string
	where    string
}

// sources lists the mirrors, then the reference's own registry.
func (v *vendorer) sources(ref string) ([]source, error) {
	orig, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("invalid image reference: %w", err)
	}
	var out []source
	for _, m := range v.o.Mirrors {
		mr, err := mirrorRef(orig, m, v.nameOpts(hostOf(m))...)
		if err != nil {
			return nil, fmt.Errorf("mirror %s: %w", m, err)
		}
		out = append(out, source{ref: mr, registry: mr.Context().RegistryStr(), where: "mirror " + m})
	}
	reg := orig.Context().RegistryStr()
	own, err := name.ParseReference(ref, v.nameOpts(reg)...)
	if err != nil {
		return nil, err
	}
	return append(out, source{ref: own, registry: reg, where: "registry " + reg}), nil
}

func hostOf(mirror string) string {
	host, _, _ := strings.Cut(mirror, "/")
	return host
}

func (v *vendorer) isInsecure(reg string) bool {
	return slices.Contains(v.o.Insecure, reg)
}

func (v *vendorer) nameOpts(reg string) []name.Option {
	if v.isInsecure(reg) {
		return []name.Option{name.Insecure}
	}
	return nil
}

// mirrorRef moves ref's repository onto a mirror, keeping tag or digest.
func mirrorRef(ref name.Reference, mirror string, opts ...name.Option) (name.Reference, error) {
	host, prefix, _ := strings.Cut(strings.TrimSuffix(mirror, "/"), "/")
	repo := ref.Context().RepositoryStr()
	if prefix != "" {
		repo = prefix + "/" + repo
	}
	s := host + "/" + repo
	switch r := ref.(type) {
	case name.Digest:
		s += "@" + r.DigestStr()
	case name.Tag:
		s += ":" + r.TagStr()
	}
	return name.ParseReference(s, opts...)
}

// pull fetches ref from one source into the store under the name as written.
func (v *vendorer) pull(ctx context.Context, ref string, src source) (Result, error) {
	rt := v.plain
	if v.isInsecure(src.registry) {
		rt = v.insecure
	}
	desc, err := remote.Get(src.ref,
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(v.o.Keychain),
		remote.WithPlatform(v.o.Platform),
		remote.WithTransport(rt),
		remote.WithRetryBackoff(remote.Backoff{Duration: 100 * time.Millisecond, Factor: 3, Jitter: 0.1, Steps: 3}),
	)
	if err != nil {
		return Result{}, err
	}
	if d, ok := src.ref.(name.Digest); ok && desc.Digest.String() != d.DigestStr() {
		return Result{}, fmt.Errorf("%w: registry returned %s for %s", store.ErrDigestMismatch, desc.Digest, d.DigestStr())
	}
	img, err := desc.Image() // an index resolves to o.Platform
	if err != nil {
		return Result{}, err
	}
	ann := map[string]string{AnnotationSource: src.ref.Name()}
	if desc.MediaType.IsIndex() {
		ann[AnnotationIndexDigest] = desc.Digest.String()
	}
	from := "remote " + src.registry
	v.o.Progress(Event{Ref: ref, Kind: EventResolved, From: from})
	total, err := imageSize(img)
	if err != nil {
		return Result{}, err
	}
	// Remote layers verify their digest as they are read; the store need not
	// hash them again (it is most of the CPU time of a pull).
	putCtx := store.WithVerifiedSource(v.progressCtx(ctx, ref, from, total))
	if _, err := v.o.Store.PutImageAnnotated(putCtx, ref, img, ann); err != nil {
		return Result{}, err
	}
	return imageResult(ref, from, img)
}

// progressCtx reports stored bytes at most once per MiB.
func (v *vendorer) progressCtx(ctx context.Context, ref, from string, total int64) context.Context {
	var done, last atomic.Int64
	return store.WithProgress(ctx, func(n int64) {
		d := done.Add(n)
		if l := last.Load(); d-l >= 1<<20 || d >= total {
			if last.CompareAndSwap(l, d) {
				v.o.Progress(Event{Ref: ref, Kind: EventProgress, From: from, Done: d, Total: total})
			}
		}
	})
}
