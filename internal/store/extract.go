package store

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/opengravity/gravity/internal/atomicdir"
)

// ExtractPackage unpacks every layer of package ref, in order, into dir,
// which must not exist or be empty. A later layer's entry replaces an
// earlier one of the same name, as in a container image's filesystem.
// Layers are applied in a temporary directory beside dir, through an
// os.Root so no entry can be written outside it, then renamed into place:
// dir is either complete or untouched.
func (s *Store) ExtractPackage(ctx context.Context, ref, dir string) error {
	return s.ExtractPackageExcept(ctx, ref, dir, nil)
}

// ExtractPackageExcept is ExtractPackage leaving out the regular files
// named in skip (paths in the package, e.g. "bin/etcd"): a node need not
// write what it will never run. Every layer is still read to its end and
// its digest checked.
func (s *Store) ExtractPackageExcept(ctx context.Context, ref, dir string, skip []string) error {
	_, _, layers, err := s.PackageLayers(ref)
	if err != nil {
		return err
	}
	err = atomicdir.Fill(dir, 0o755, func(tmp string) error { return s.applyLayers(ctx, tmp, layers, skip) })
	if err != nil {
		return fmt.Errorf("extract package %s: %w", ref, err)
	}
	return nil
}

func (s *Store) applyLayers(ctx context.Context, dir string, layers []v1.Descriptor, skip []string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for i, l := range layers {
		rc, err := s.openLayer(l)
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		err = extractLayer(ctx, root, rc, skip)
		if err == nil {
			// Read past the tar's end so the blob's digest is checked.
			_, err = io.Copy(io.Discard, rc)
		}
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer %d (%s): %w", i, l.Digest, err)
		}
	}
	return nil
}

// extractLayer applies one uncompressed layer tar to root. Only
// directories, regular files and links are accepted; names are checked
// with cleanName and symlink targets with linkTarget before anything is
// written, and root confines what the checks might miss.
func extractLayer(ctx context.Context, root *os.Root, r io.Reader, skip []string) error {
	tr := tar.NewReader(r)
	for count := 0; ; count++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("corrupt or truncated layer: %w", err)
		}
		if count >= maxTarEntries {
			return fmt.Errorf("layer has more than %d entries", maxTarEntries)
		}
		if hdr.Typeflag == tar.TypeReg && slices.Contains(skip, path.Clean(strings.TrimPrefix(hdr.Name, "./"))) {
			continue // tar.Reader skips the content
		}
		if err := extractEntry(root, hdr, tr); err != nil {
			return err
		}
	}
}

func extractEntry(root *os.Root, hdr *tar.Header, r io.Reader) error {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "." {
		if hdr.Typeflag == tar.TypeDir {
			return nil
		}
		return fmt.Errorf("layer entry %q has an unsafe path", hdr.Name)
	}
	// Whiteouts delete what lower layers hold; packages never need that,
	// and honouring them half-way would be worse than refusing.
	if strings.HasPrefix(path.Base(name), ".wh.") {
		return fmt.Errorf("layer entry %q is a whiteout, unsupported in packages", hdr.Name)
	}
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
	}
	// Setuid, setgid and sticky bits are dropped: a package has no use for them.
	perm := fs.FileMode(hdr.Mode) & fs.ModePerm
	switch hdr.Typeflag {
	case tar.TypeDir:
		return extractDir(root, name, perm|0o700)
	case tar.TypeReg:
		if isSparse(hdr) {
			return fmt.Errorf("layer entry %q is a sparse file", hdr.Name)
		}
		return extractFile(root, name, perm, r)
	case tar.TypeSymlink:
		if _, err := linkTarget(hdr.Linkname, path.Dir(name)); err != nil {
			return fmt.Errorf("layer link %q: %w", hdr.Name, err)
		}
		return replaceWith(root, name, func() error { return root.Symlink(hdr.Linkname, name) })
	case tar.TypeLink:
		target, err := cleanName(hdr.Linkname)
		if err != nil || target == "." {
			return fmt.Errorf("layer hard link %q points outside the layer (%q)", hdr.Name, hdr.Linkname)
		}
		return replaceWith(root, name, func() error { return root.Link(target, name) })
	}
	return fmt.Errorf("layer entry %q has unsupported type %q", hdr.Name, hdr.Typeflag)
}

func extractDir(root *os.Root, name string, perm fs.FileMode) error {
	fi, err := root.Lstat(name)
	if err == nil && !fi.IsDir() {
		if err := root.RemoveAll(name); err != nil {
			return fmt.Errorf("replacing %s: %w", name, err)
		}
	}
	if err := root.Mkdir(name, perm); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	// Mkdir is subject to the umask, and an existing directory keeps its
	// old mode otherwise.
	if err := root.Chmod(name, perm); err != nil {
		return fmt.Errorf("setting mode of %s: %w", name, err)
	}
	return nil
}

func extractFile(root *os.Root, name string, perm fs.FileMode, r io.Reader) error {
	return replaceWith(root, name, func() error {
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, r)
		if err == nil {
			err = f.Chmod(perm) // OpenFile's mode is subject to the umask
		}
		return errors.Join(err, f.Close())
	})
}

// replaceWith removes whatever name is (a lower layer's file, link or
// tree), then creates it anew; removal never follows a link.
func replaceWith(root *os.Root, name string, create func() error) error {
	if err := root.RemoveAll(name); err != nil {
		return fmt.Errorf("replacing %s: %w", name, err)
	}
	if err := create(); err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	return nil
}
