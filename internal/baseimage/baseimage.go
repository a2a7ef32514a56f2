// Package baseimage finds and imports base images: cluster images named
// gravity:<version> that carry the Kubernetes runtime every app image is
// built on. They come as files (<name>-<version>.tar, made by `make`) in a
// directory beside tele, and are imported into tele's state dir on first use:
// their packages and images into the local store, their gravity binary and
// metadata into <state>/base/<name>-<version>/.
package baseimage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/opengravity/gravity/internal/clusterimage"
	"github.com/opengravity/gravity/internal/store"
)

// Image is one base image, imported or not.
type Image struct {
	Name    string            `json:"name"`
	Version string            `json:"version"`
	File    string            `json:"file,omitempty"` // the image file, when known
	InStore bool              `json:"imported"`       // imported into the state dir
	Meta    clusterimage.Meta `json:"-"`
}

// Finder looks for base images in the state dir and in Dirs.
type Finder struct {
	Store    *store.Store
	StateDir string
	Dirs     []string
}

// ErrNotFound is returned (wrapped) by Find for an unknown base image.
var ErrNotFound = errors.New("base image not found")

// ParseName splits "gravity:0.1.0" and checks the version is semver.
func ParseName(s string) (name, version string, err error) {
	name, version, ok := strings.Cut(s, ":")
	if !ok || name == "" || version == "" {
		return "", "", fmt.Errorf("base image %q: want name:version, e.g. gravity:0.1.0", s)
	}
	if _, err := semver.StrictNewVersion(version); err != nil {
		return "", "", fmt.Errorf("base image %q: version is not semver: %w", s, err)
	}
	return name, version, nil
}

func (f *Finder) importedDir(name, version string) string {
	return filepath.Join(f.StateDir, "base", name+"-"+version)
}

// List returns every base image known, imported ones first in their state,
// sorted by name and then newest version first.
func (f *Finder) List() ([]Image, error) {
	byName := map[string]Image{}
	imported, err := filepath.Glob(filepath.Join(f.StateDir, "base", "*", metaFile))
	if err != nil {
		return nil, err
	}
	for _, p := range imported {
		meta, err := readMeta(p)
		if err != nil {
			return nil, err
		}
		byName[meta.Name+":"+meta.Version] = Image{Name: meta.Name, Version: meta.Version, InStore: true, Meta: meta}
	}
	for _, dir := range f.Dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.tar"))
		if err != nil {
			return nil, err
		}
		for _, file := range files {
			ci, err := clusterimage.Open(file)
			if err != nil {
				return nil, fmt.Errorf("reading base image %s: %w", file, err)
			}
			key := ci.Meta.Name + ":" + ci.Meta.Version
			if img, ok := byName[key]; ok {
				img.File = file
				// A rebuilt base image of the same version (a developer's
				// `make`) replaces the imported one on next use.
				if !reflect.DeepEqual(img.Meta, ci.Meta) {
					img.InStore, img.Meta = false, ci.Meta
				}
				byName[key] = img
				continue
			}
			byName[key] = Image{Name: ci.Meta.Name, Version: ci.Meta.Version, File: file, Meta: ci.Meta}
		}
	}
	out := make([]Image, 0, len(byName))
	for _, img := range byName {
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i], out[j]) })
	return out, nil
}

func less(a, b Image) bool {
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	va, errA := semver.NewVersion(a.Version)
	vb, errB := semver.NewVersion(b.Version)
	if errA != nil || errB != nil {
		return a.Version > b.Version
	}
	return va.GreaterThan(vb)
}

// Find returns the base image name:version; the error for an unknown one
// lists what is available.
func (f *Finder) Find(name, version string) (Image, error) {
	all, err := f.List()
	if err != nil {
		return Image{}, err
	}
	var have []string
	for _, img := range all {
		if img.Name == name && img.Version == version {
			return img, nil
		}
		have = append(have, img.Name+":"+img.Version)
	}
	avail := "none (run `make` to build the base image, or pass --base-image-dir)"
	if len(have) > 0 {
		avail = strings.Join(have, ", ")
	}
	return Image{}, fmt.Errorf("%w: %s:%s; available (tele ls): %s", ErrNotFound, name, version, avail)
}

// Entries are the base image's packages and images, as the cluster image
// embeds them; each must be in the store with the digest the base recorded.
func (f *Finder) Entries(img Image) ([]clusterimage.Entry, error) {
	var out []clusterimage.Entry
	for _, group := range [][]clusterimage.Item{img.Meta.Packages, img.Meta.Images} {
		for _, it := range group {
			desc, err := f.Store.Descriptor(it.Ref)
			if err != nil {
				return nil, fmt.Errorf("base image %s:%s: %s is missing from the local package cache (remove %s to re-import): %w",
					img.Name, img.Version, it.Ref, f.importedDir(img.Name, img.Version), err)
			}
			if desc.Digest.String() != it.Digest {
				return nil, fmt.Errorf("base image %s:%s: %s in the local package cache is %s, the base image has %s",
					img.Name, img.Version, it.Ref, desc.Digest, it.Digest)
			}
			out = append(out, clusterimage.Entry{Ref: it.Ref, Kind: it.Kind, Descriptor: desc})
		}
	}
	return out, nil
}

// GravityBinary is the node binary of an imported base image.
func (f *Finder) GravityBinary(_ context.Context, img Image) (string, error) {
	p := filepath.Join(f.importedDir(img.Name, img.Version), clusterimage.GravityBinary)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("base image %s:%s is not imported: %w", img.Name, img.Version, err)
	}
	return p, nil
}

// TshBinary is the tsh of an imported base image; "" when it has none.
func (f *Finder) TshBinary(img Image) string {
	p := filepath.Join(f.importedDir(img.Name, img.Version), clusterimage.TshBinary)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

const metaFile = clusterimage.ManifestFile

func readMeta(path string) (clusterimage.Meta, error) {
	var m clusterimage.Meta
	data, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}
