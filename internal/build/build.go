// Package build implements `tele build`: it turns an app manifest and its
// resources into a cluster image. The steps are listed once, in Build; each is
// a small function over the shared buildState.
package build

import (
	"context"
	"fmt"
	"github.com/Masterminds/semver/v3"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/opengravity/gravity/internal/baseimage"
	"github.com/opengravity/gravity/internal/clusterimage"
	"github.com/opengravity/gravity/internal/manifest"
	"github.com/opengravity/gravity/internal/store"
	"github.com/opengravity/gravity/internal/vendor"
)

// LocalRegistry is the in-cluster registry every vendored image is renamed to.
const LocalRegistry = "registry.local:5000"

// Options are the inputs of one build; the CLI fills them from flags.
type Options struct {
	ManifestPath string    // app.yaml
	OutputPath   string    // default: <name>-<version>.tar in the working directory
	Overwrite    bool      // replace an existing output file
	StateDir     string    // tele's state dir (local store, imported base images)
	BaseImageDir []string  // extra directories searched for base image files
	BaseImage    string    // overrides the manifest's baseImage when set
	Set, Values  []string  // Helm values for rendering charts
	Mirrors      []string  // registry mirrors tried before an image's own registry
	Insecure     []string  // registries reached over plain HTTP
	Offline      bool      // never contact a registry
	Platform     string    // os/arch[/variant] of the images to vendor
	Parallel     int       // images pulled at once
	Out          io.Writer // the step lines users grep; io.Discard when quiet
	Log          *slog.Logger
	Progress     func(vendor.Event)      // byte progress of pulls, shown only on a terminal
	SaveProgress func(done, total int64) // byte progress of writing the cluster image
	// From is an earlier cluster image of the same application: the build
	// writes a delta (upgrade) image without the blobs it has.
	From string
}

// Result describes the cluster image a build wrote.
type Result struct {
	Path      string          `json:"path"`
	Name      string          `json:"name"`
	Version   string          `json:"version"`
	BaseImage string          `json:"baseImage"`
	Images    []VendoredImage `json:"images"`
	Size      int64           `json:"size"`
	Duration  time.Duration   `json:"duration"`
}

// VendoredImage is one application image embedded in the cluster image.
type VendoredImage struct {
	Ref       string   `json:"ref"`       // as written in the resources
	LocalName string   `json:"localName"` // registry.local:5000/…
	Digest    string   `json:"digest"`
	Size      int64    `json:"size"`
	From      string   `json:"from"`
	Users     []string `json:"users"`
}

// buildState is what the steps hand each other.
type buildState struct {
	opts     Options
	app      *manifest.App
	store    *store.Store
	bases    *baseimage.Finder
	base     baseimage.Image
	platform v1.Platform
	output   string
	images   []VendoredImage
	entries  []clusterimage.Entry
	rewrites map[string][]byte // app-relative path → rewritten file content
	appEntry store.Entry
	gravity  string // path of the gravity binary to embed
	tsh      string // path of the tsh binary to embed; "" when the base image has none
	delta    *clusterimage.DeltaSpec
	cleanup  []func()
	mu       sync.Mutex // serialises output lines printed from vendoring goroutines
}

type step struct {
	title func(*buildState) string
	run   func(context.Context, *buildState) error
}

func fixed(s string) func(*buildState) string { return func(*buildState) string { return s } }

// steps is the order of a build, listed once.
var steps = []step{
	{fixed("Selecting base image version"), selectBase},
	{fetchTitle, fetchBase},
	{fixed("Embedding application container images"), vendorImages},
	{fixed("Creating application"), createApp},
	{fixed("Generating the cluster snapshot"), snapshot},
	{func(st *buildState) string { return "Saving the snapshot as " + filepath.Base(st.output) }, save},
}

// Build runs every step; on failure nothing is left at the output path.
func Build(ctx context.Context, opts Options) (*Result, error) {
	start := time.Now()
	st, err := newState(opts)
	if err != nil {
		return nil, err
	}
	defer st.close()
	for i, s := range steps {
		fmt.Fprintf(st.opts.Out, "* [%d/%d] %s\n", i+1, len(steps), s.title(st))
		if err := s.run(ctx, st); err != nil {
			return nil, err
		}
	}
	elapsed := time.Since(start)
	fmt.Fprintf(st.opts.Out, "* [%d/%d] Build completed in %s\n", len(steps), len(steps), humanSeconds(elapsed))
	fi, err := os.Stat(st.output)
	if err != nil {
		return nil, fmt.Errorf("checking the written cluster image: %w", err)
	}
	return &Result{
		Path: st.output, Name: st.app.Manifest.Metadata.Name, Version: st.app.Manifest.Metadata.ResourceVersion,
		BaseImage: st.base.Name + ":" + st.base.Version, Images: st.images, Size: fi.Size(), Duration: elapsed,
	}, nil
}

func humanSeconds(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	if s == 1 {
		return "1 second"
	}
	return fmt.Sprintf("%d seconds", s)
}

// newState loads the manifest and opens the state dir before any step runs,
// so bad input is reported before anything is printed as progress.
func newState(opts Options) (*buildState, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	app, err := manifest.Load(opts.ManifestPath)
	if err != nil {
		return nil, err
	}
	for _, w := range app.Warnings {
		opts.Log.Warn(w.String())
	}
	platform, err := v1.ParsePlatform(orDefault(opts.Platform, "linux/amd64"))
	if err != nil {
		return nil, fmt.Errorf("--platform %q: %w", opts.Platform, err)
	}
	st, err := store.Open(filepath.Join(opts.StateDir, "store"))
	if err != nil {
		return nil, fmt.Errorf("opening the local store in %s: %w", opts.StateDir, err)
	}
	output := opts.OutputPath
	if output == "" {
		output = fmt.Sprintf("%s-%s.tar", app.Manifest.Metadata.Name, app.Manifest.Metadata.ResourceVersion)
	}
	if output, err = filepath.Abs(output); err != nil {
		return nil, err
	}
	if !opts.Overwrite {
		if _, err := os.Stat(output); err == nil {
			return nil, fmt.Errorf("%s already exists (use --overwrite to replace it)", output)
		}
	}
	delta, err := deltaBase(opts.From, app.Manifest.Metadata.Name, app.Manifest.Metadata.ResourceVersion)
	if err != nil {
		return nil, err
	}
	return &buildState{
		opts: opts, app: app, store: st, platform: *platform, output: output, delta: delta,
		bases: &baseimage.Finder{Store: st, Dirs: opts.BaseImageDir, StateDir: opts.StateDir},
	}, nil
}

// deltaBase reads the blobs of the image a delta is built against, which
// must be an earlier version of the same application.
func deltaBase(path, name, version string) (*clusterimage.DeltaSpec, error) {
	if path == "" {
		return nil, nil
	}
	meta, have, err := clusterimage.Blobs(path)
	if err != nil {
		return nil, fmt.Errorf("--from: %w", err)
	}
	if meta.Name != name {
		return nil, fmt.Errorf("--from %s is an image of %s, not %s", path, meta.Name, name)
	}
	from, ferr := semver.StrictNewVersion(meta.Version)
	to, terr := semver.StrictNewVersion(version)
	if ferr != nil || terr != nil || !from.LessThan(to) {
		return nil, fmt.Errorf("--from %s is version %s: a delta upgrades from an earlier version than %s", path, meta.Version, version)
	}
	return &clusterimage.DeltaSpec{From: meta.Name + ":" + meta.Version, Have: have}, nil
}

func (st *buildState) close() {
	for i := len(st.cleanup) - 1; i >= 0; i-- {
		st.cleanup[i]()
	}
}

func (st *buildState) printf(format string, args ...any) {
	fmt.Fprintf(st.opts.Out, "       "+format+"\n", args...)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
