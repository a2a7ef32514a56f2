// Package discover finds every container image an application needs (plain
// YAML resources, rendered Helm charts, hook Jobs, ImageSets) and rewrites
// image references to the cluster-local registry.
package discover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
)

// Options says where to look. It takes plain values rather than the
// manifest package's App so that discovery can also run on a bare chart.
type Options struct {
	Dir      string   // app directory
	Manifest string   // the app manifest; never read as a resource
	Hooks    []Hook   // hook Jobs; their files are not read as resources
	Set      []string // helm --set key=val, applied to every chart
	Values   []string // helm --values files, applied to every chart
	Ignore   []string // glob patterns relative to Dir (or base names) to skip
}

// Hook is a lifecycle hook Job from the manifest.
type Hook struct {
	Name   string       // hook name, e.g. "install"
	Source string       // "install.yaml" or "app.yaml#hooks.install.job"
	File   string       // the file holding the Job (absolute or relative to Dir); empty if inline
	Job    *batchv1.Job // the Job as loaded
}

// Result lists what was found. Paths are relative to Dir, slash-separated
// and sorted.
type Result struct {
	Images  []Image  // sorted by Ref, unique
	Charts  []string // chart directories rendered
	Files   []string // plain YAML files read
	Skipped []string // documents and fields skipped, with the reason
}

// Image is one image reference as written and the resources using it, as
// "charts/alpine: Pod/alpine (container alpine)".
type Image struct {
	Ref   string
	Users []string
}

// Discover finds every image the application in o.Dir needs.
func Discover(ctx context.Context, o Options) (*Result, error) {
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("app directory: %w", err)
	}
	o.Dir = dir
	c := &collector{users: map[string]map[string]bool{}, res: &Result{}}
	if err := c.hooks(o.Hooks); err != nil {
		return nil, err
	}
	charts, files, err := walk(o)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := c.file(o.Dir, f); err != nil {
			return nil, err
		}
	}
	for _, ch := range charts {
		if err := c.chart(ctx, o, ch); err != nil {
			return nil, err
		}
	}
	return c.result(), nil
}

// collector gathers images and their users across sources.
type collector struct {
	users map[string]map[string]bool
	res   *Result
}

func (c *collector) add(source string, s *scan) {
	for _, f := range s.fields {
		if c.users[f.ref] == nil {
			c.users[f.ref] = map[string]bool{}
		}
		c.users[f.ref][source+": "+f.owner] = true
	}
	for _, owner := range s.empty {
		c.res.Skipped = append(c.res.Skipped, fmt.Sprintf("%s: %s: no image", source, owner))
	}
	for _, note := range s.notes {
		c.res.Skipped = append(c.res.Skipped, fmt.Sprintf("%s: %s, skipped", source, note))
	}
}

func (c *collector) result() *Result {
	for ref, users := range c.users {
		img := Image{Ref: ref}
		for u := range users {
			img.Users = append(img.Users, u)
		}
		slices.Sort(img.Users)
		c.res.Images = append(c.res.Images, img)
	}
	slices.SortFunc(c.res.Images, func(a, b Image) int { return strings.Compare(a.Ref, b.Ref) })
	slices.Sort(c.res.Charts)
	slices.Sort(c.res.Files)
	return c.res
}

// hooks scans hook Jobs. The typed Job goes through JSON, which YAML
// reads as is, so hooks share the generic reader with files.
func (c *collector) hooks(hooks []Hook) error {
	for _, h := range hooks {
		if h.Job == nil {
			return fmt.Errorf("hook %s (%s): no job", h.Name, h.Source)
		}
		data, err := json.Marshal(h.Job)
		if err != nil {
			return fmt.Errorf("hook %s (%s): %w", h.Name, h.Source, err)
		}
		docs, err := parseStream(data)
		if err != nil || len(docs) != 1 {
			return fmt.Errorf("hook %s (%s): re-read job: %v", h.Name, h.Source, err)
		}
		s := &scan{}
		if err := s.object(docs[0].Content[0], "Job", false, 0); err != nil {
			var pe *posError
			if errors.As(err, &pe) {
				pe.Line = 0 // a line of the re-encoded Job means nothing to its author
			}
			return fmt.Errorf("hook %s (%s): %w", h.Name, h.Source, err)
		}
		c.add(h.Source, s)
	}
	return nil
}

func (c *collector) file(dir, rel string) error {
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return fmt.Errorf("read resource: %w", err)
	}
	s, err := scanStream(data)
	if err != nil {
		return fileError(rel, err)
	}
	c.res.Files = append(c.res.Files, rel)
	c.add(rel, s)
	return nil
}

// fileError names the file and, where known, the line: "web.yaml:3: msg".
func fileError(file string, err error) error {
	var pe *posError
	if errors.As(err, &pe) && pe.Line > 0 {
		if pe.Err != nil {
			return fmt.Errorf("%s:%d: %s: %w", file, pe.Line, pe.Msg, pe.Err)
		}
		return fmt.Errorf("%s:%d: %s", file, pe.Line, pe.Msg)
	}
	return fmt.Errorf("%s: %w", file, err)
}

func (c *collector) chart(ctx context.Context, o Options, rel string) error {
	manifest, err := renderChart(ctx, filepath.Join(o.Dir, filepath.FromSlash(rel)), o.Set, o.Values)
	if err != nil {
		return fmt.Errorf("render chart %s: %w", rel, err)
	}
	s, err := scanStream([]byte(manifest))
	if err != nil {
		return fmt.Errorf("chart %s: rendered manifest: %w", rel, err)
	}
	c.res.Charts = append(c.res.Charts, rel)
	label := rel
	if rel == "." { // the app directory is itself a chart (tele build chart-dir)
		label = filepath.Base(o.Dir)
	}
	c.add(label, s)
	return nil
}
