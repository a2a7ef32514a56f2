package clusterimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/opengravity/gravity/internal/atomicdir"
)

// Unpack extracts the cluster image at tarPath into dir, which must not
// exist or be empty. Only the documented layout is accepted: any other
// entry, link, device, or content that does not match its digest fails the
// whole extraction. Entries are extracted into a temporary directory beside
// dir that is renamed into place at the end, so dir is either complete or
// untouched.
func Unpack(ctx context.Context, tarPath, dir string) error {
	f, err := os.Open(tarPath)
	if err != nil {
		return fmt.Errorf("opening cluster image: %w", err)
	}
	defer f.Close()
	return atomicdir.Fill(dir, modeDir, func(tmp string) error {
		if err := extract(ctx, f, tarPath, tmp); err != nil {
			return fmt.Errorf("unpacking %s: %w", tarPath, err)
		}
		return nil
	})
}

func extract(ctx context.Context, r *os.File, tarPath, tmp string) error {
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return fmt.Errorf("opening %s: %w", tmp, err)
	}
	defer root.Close()
	if _, err := scanImage(ctx, r, tarPath, rootSink{root}); err != nil {
		return err
	}
	// The temporary directory is created 0700; the result should not be.
	if err := os.Chmod(tmp, modeDir); err != nil {
		return fmt.Errorf("setting mode of %s: %w", tmp, err)
	}
	return nil
}

// rootSink writes entries through an os.Root so that, whatever the
// scanner lets through, nothing can land outside the target directory.
type rootSink struct{ root *os.Root }

func (s rootSink) dir(name string) error {
	if err := s.root.Mkdir(name, modeDir); err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	// Mkdir is subject to the umask; the layout's modes are not.
	if err := s.root.Chmod(name, modeDir); err != nil {
		return fmt.Errorf("setting mode of %s: %w", name, err)
	}
	return nil
}

func (s rootSink) file(name string, mode int64) (io.WriteCloser, error) {
	perm := fs.FileMode(mode) & fs.ModePerm
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", name, err)
	}
	if err := f.Chmod(perm); err != nil {
		return nil, errors.Join(fmt.Errorf("setting mode of %s: %w", name, err), f.Close())
	}
	return f, nil
}
