package build

import (
	"context"
	"fmt"

	"github.com/opengravity/gravity/internal/baseimage"
	"github.com/opengravity/gravity/internal/version"
)

// selectBase picks the base image: --with-base-image, else the manifest's
// baseImage, else the one matching this tele's version.
func selectBase(_ context.Context, st *buildState) error {
	name, ver, how := "gravity", version.Version, ""
	if st.opts.BaseImage != "" {
		n, v, err := baseimage.ParseName(st.opts.BaseImage)
		if err != nil {
			return fmt.Errorf("--with-base-image: %w", err)
		}
		name, ver, how = n, v, " set with --with-base-image"
	} else if n, v, ok := st.app.Manifest.BaseImage(); ok {
		name, ver, how = n, v, " set in manifest"
	}
	img, err := st.bases.Find(name, ver)
	if err != nil {
		return err
	}
	st.base = img
	st.printf("Will use base image version %s%s", ver, how)
	return nil
}

func fetchTitle(st *buildState) string {
	if st.base.InStore {
		return "Local package cache is up-to-date"
	}
	return "Importing dependencies from " + st.base.File
}

// fetchBase imports the base image into the state dir on first use and
// extracts the gravity binary that goes into every cluster image.
func fetchBase(ctx context.Context, st *buildState) error {
	if !st.base.InStore {
		img, err := st.bases.Import(ctx, st.base)
		if err != nil {
			return err
		}
		st.base = img
		st.printf("Imported base image %s:%s into the local package cache", img.Name, img.Version)
	}
	bin, err := st.bases.GravityBinary(ctx, st.base)
	if err != nil {
		return err
	}
	st.gravity, st.tsh = bin, st.bases.TshBinary(st.base)
	entries, err := st.bases.Entries(st.base)
	if err != nil {
		return err
	}
	st.entries = append(st.entries, entries...)
	return nil
}
