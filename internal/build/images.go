package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opengravity/gravity/internal/clusterimage"
	"github.com/opengravity/gravity/internal/discover"
	"github.com/opengravity/gravity/internal/vendor"
)

// vendorImages discovers every image the app uses, gets each into the local
// store and records it under its in-cluster name. It also rewrites the image
// references of hook Jobs and plain resources to the cluster registry.
func vendorImages(ctx context.Context, st *buildState) error {
	res, err := st.discover(ctx)
	if err != nil {
		return err
	}
	if err := st.rewriteResources(res); err != nil {
		return err
	}
	if len(res.Images) == 0 {
		st.printf("Found no images to vendor in application manifest %s", st.rel(st.app.Path))
		return nil
	}
	reqs := make([]vendor.Request, len(res.Images))
	for i, img := range res.Images {
		reqs[i] = vendor.Request{Ref: img.Ref, Users: img.Users}
	}
	results, err := vendor.Vendor(ctx, vendor.Options{
		Store: st.store, Platform: st.platform, Mirrors: st.opts.Mirrors, Insecure: st.opts.Insecure,
		Offline: st.opts.Offline, Parallel: st.opts.Parallel, Progress: st.progress,
	}, reqs)
	if err != nil {
		return err
	}
	for i, r := range results {
		if err := st.addImage(res.Images[i], r); err != nil {
			return err
		}
	}
	return nil
}

func (st *buildState) discover(ctx context.Context) (*discover.Result, error) {
	st.printf("Detected application manifest %s", st.rel(st.app.Path))
	hooks := make([]discover.Hook, len(st.app.Hooks))
	for i, h := range st.app.Hooks {
		hooks[i] = discover.Hook{Name: h.Hook, Source: h.Source, File: h.File, Job: h.Job}
		st.printf("Detected %s hook %s", h.Hook, h.Source)
	}
	res, err := discover.Discover(ctx, discover.Options{
		Dir: st.app.Dir, Manifest: st.app.Path, Hooks: hooks,
		Set: st.opts.Set, Values: st.opts.Values, Ignore: st.ignored(),
	})
	if err != nil {
		return nil, err
	}
	for _, c := range res.Charts {
		st.printf("Detected Helm chart %s", c)
	}
	for _, f := range res.Files {
		st.printf("Detected resource file %s", f)
	}
	return res, nil
}

// rewriteResources points hook Jobs and plain resource files at the cluster
// registry. Charts are left alone: they template the registry themselves.
func (st *buildState) rewriteResources(res *discover.Result) error {
	files := append([]string{}, res.Files...)
	for _, h := range st.app.Hooks {
		if h.File != "" {
			files = append(files, st.rel(h.File))
		}
	}
	st.rewrites = map[string][]byte{}
	for _, rel := range files {
		data, err := os.ReadFile(filepath.Join(st.app.Dir, rel))
		if err != nil {
			return fmt.Errorf("reading %s: %w", rel, err)
		}
		out, changes, err := discover.RewriteYAML(data, LocalRegistry)
		if err != nil {
			return fmt.Errorf("rewriting image references in %s: %w", rel, err)
		}
		for _, c := range changes {
			st.printf("Rewrote image %s to %s in %s", c.From, c.To, rel)
		}
		if len(changes) > 0 {
			st.rewrites[filepath.ToSlash(rel)] = out
		}
	}
	return nil
}

func (st *buildState) addImage(img discover.Image, r vendor.Result) error {
	local, err := discover.LocalName(img.Ref, LocalRegistry)
	if err != nil {
		return err
	}
	desc, err := st.store.Descriptor(img.Ref)
	if err != nil {
		return fmt.Errorf("image %s was vendored but is not in the local store: %w", img.Ref, err)
	}
	st.entries = append(st.entries, clusterimage.Entry{Ref: local, Kind: "image", Descriptor: desc})
	st.images = append(st.images, VendoredImage{
		Ref: img.Ref, LocalName: local, Digest: r.Digest.String(), Size: r.Size, From: r.From, Users: img.Users,
	})
	st.printf("Vendored image %s for %s", discover.ShortName(img.Ref), strings.Join(img.Users, "; "))
	return nil
}

// progress prints where each image comes from as soon as that is known
// (vendoring runs in parallel, so printing is serialised) and hands byte
// progress on to the terminal display.
func (st *buildState) progress(e vendor.Event) {
	if e.Kind == vendor.EventResolved {
		st.mu.Lock()
		if e.From == "local" {
			st.printf("Using local image %s", e.Ref)
		} else {
			st.printf("Pulling remote image %s (%s)", e.Ref, strings.TrimPrefix(e.From, "remote "))
		}
		st.mu.Unlock()
	}
	if st.opts.Progress != nil {
		st.opts.Progress(e)
	}
}

// ignored lists what never belongs to the app's resources: the cluster image
// being written (often into the app directory itself) and VCS metadata.
func (st *buildState) ignored() []string {
	ign := []string{".git", ".hg", ".svn"}
	if rel, err := filepath.Rel(st.app.Dir, st.output); err == nil && !filepath.IsAbs(rel) {
		ign = append(ign, filepath.ToSlash(rel))
	}
	return ign
}

func (st *buildState) rel(path string) string {
	if rel, err := filepath.Rel(st.app.Dir, path); err == nil {
		return filepath.ToSlash(rel)
	}
	return path
}
