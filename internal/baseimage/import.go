package baseimage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opengravity/gravity/internal/clusterimage"
)

// Import verifies a base image file and brings it into the state dir. It is
// all or nothing: the imported directory appears (by rename) only after its
// packages are in the store, so an interrupted import is simply redone.
func (f *Finder) Import(ctx context.Context, img Image) (Image, error) {
	if img.File == "" {
		return img, fmt.Errorf("base image %s:%s has no file to import from", img.Name, img.Version)
	}
	base := filepath.Join(f.StateDir, "base")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return img, err
	}
	tmp, err := os.MkdirTemp(base, ".import-")
	if err != nil {
		return img, err
	}
	defer os.RemoveAll(tmp)
	unpacked := filepath.Join(tmp, "image")
	if err := clusterimage.Unpack(ctx, img.File, unpacked); err != nil {
		return img, fmt.Errorf("unpacking base image %s: %w", img.File, err)
	}
	if len(img.Meta.Packages)+len(img.Meta.Images) > 0 {
		if _, err := f.Store.Load(ctx, filepath.Join(unpacked, clusterimage.PackagesDir)); err != nil {
			return img, fmt.Errorf("importing the packages of base image %s: %w", img.File, err)
		}
	}
	keep := filepath.Join(tmp, "keep")
	if err := os.Mkdir(keep, 0o755); err != nil {
		return img, err
	}
	for _, name := range []string{clusterimage.ManifestFile, clusterimage.AppManifestFile, clusterimage.GravityBinary, clusterimage.TshBinary} {
		err := os.Rename(filepath.Join(unpacked, name), filepath.Join(keep, name))
		if name == clusterimage.TshBinary && errors.Is(err, fs.ErrNotExist) {
			continue // a base image from before tsh
		}
		if err != nil {
			return img, fmt.Errorf("base image %s: %w", img.File, err)
		}
	}
	dst := f.importedDir(img.Name, img.Version)
	if err := os.RemoveAll(dst); err != nil {
		return img, err
	}
	if err := os.Rename(keep, dst); err != nil {
		return img, fmt.Errorf("importing base image %s: %w", img.File, err)
	}
	img.InStore = true
	return img, nil
}
