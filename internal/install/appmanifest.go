package install

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/opengravity/gravity/internal/clusterimage"
	"github.com/opengravity/gravity/internal/manifest"
)

// loadImageApp reads the app's manifest and hooks from the app package of
// an unpacked cluster image (the top-level app.yaml is the manifest as
// written, without the hook files it names). The package is read, not
// imported: nothing is written but a temporary copy of its resources.
func loadImageApp(ctx context.Context, imageDir, locator string) (*manifest.App, error) {
	tmp, err := os.MkdirTemp("", "gravity-app-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := extractLayoutPackage(ctx, filepath.Join(imageDir, clusterimage.PackagesDir), locator, tmp); err != nil {
		return nil, fmt.Errorf("reading application package %s: %w", locator, err)
	}
	return manifest.Load(filepath.Join(tmp, resourcesSubPath, manifest.DefaultFile))
}

func extractLayoutPackage(ctx context.Context, dir, ref, dest string) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		return err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range im.Manifests {
		if d.Annotations[clusterimage.AnnotationRefName] != ref {
			continue
		}
		img, err := p.Image(d.Digest)
		if err != nil {
			return err
		}
		layers, err := img.Layers()
		if err != nil {
			return err
		}
		for _, l := range layers {
			rc, err := l.Uncompressed()
			if err != nil {
				return err
			}
			err = untar(ctx, rc, dest)
			rc.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	return errors.New("not in the cluster image")
}

// untar writes regular files and directories only, inside dest.
func untar(ctx context.Context, r io.Reader, dest string) error {
	root, err := os.OpenRoot(dest)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = root.MkdirAll(name, 0o755)
		case tar.TypeReg:
			err = writeRootFile(root, name, tr)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
	}
}

func writeRootFile(root *os.Root, name string, r io.Reader) error {
	if err := root.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := root.Create(name)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
