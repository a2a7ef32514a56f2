package discover

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// walk lists chart directories and plain YAML files under o.Dir, as
// slash-separated paths relative to it. A chart directory is rendered, so
// none of its files (values.yaml, templates, subcharts) is read as YAML.
func walk(o Options) (charts, files []string, err error) {
	for _, pat := range o.Ignore {
		if _, err := path.Match(pat, ""); err != nil {
			return nil, nil, fmt.Errorf("ignore pattern %q: %w", pat, err)
		}
	}
	skip := excluded(o)
	err = filepath.WalkDir(o.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk app directory: %w", err)
		}
		rel, err := filepath.Rel(o.Dir, p)
		if err != nil {
			return fmt.Errorf("walk app directory: %w", err)
		}
		rel = filepath.ToSlash(rel)
		if rel != "." && ignored(o.Ignore, rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			isChart, err := hasChartFile(p)
			if err != nil || !isChart {
				return err
			}
			charts = append(charts, rel)
			return filepath.SkipDir
		}
		if isYAML(rel) && !skip[filepath.Clean(p)] {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return charts, files, nil
}

// excluded is the set of files reported otherwise: the manifest and the
// hook files, whose Jobs come from the manifest.
func excluded(o Options) map[string]bool {
	skip := map[string]bool{}
	if o.Manifest != "" {
		skip[absIn(o.Dir, o.Manifest)] = true
	}
	for _, h := range o.Hooks {
		if h.File != "" {
			skip[absIn(o.Dir, h.File)] = true
		}
	}
	return skip
}

func absIn(dir, p string) string {
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	return filepath.Clean(p)
}

// ignored matches rel against each pattern, and a pattern without "/"
// also against every path component, so ".git" or "*.tar" apply at any depth.
func ignored(patterns []string, rel string) bool {
	parts := strings.Split(rel, "/")
	for _, pat := range patterns {
		pat = strings.TrimSuffix(filepath.ToSlash(pat), "/")
		if ok, _ := path.Match(pat, rel); ok {
			return true
		}
		if strings.Contains(pat, "/") {
			continue
		}
		for _, part := range parts {
			if ok, _ := path.Match(pat, part); ok {
				return true
			}
		}
	}
	return false
}

func isYAML(rel string) bool {
	ext := strings.ToLower(path.Ext(rel))
	return ext == ".yaml" || ext == ".yml"
}

func hasChartFile(dir string) (bool, error) {
	fi, err := os.Stat(filepath.Join(dir, "Chart.yaml"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("walk app directory: %w", err)
	}
	return !fi.IsDir(), nil
}
