// Package atomicdir fills a directory all at once: its content is made in
// a temporary directory beside it and renamed into place, so that a reader
// sees the directory complete or not at all, and a failure or interruption
// leaves nothing behind but a hidden temporary directory that the next
// attempt does not trip on.
package atomicdir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Fill makes dir, which must not exist or be empty, with the content fill
// writes into the temporary directory it is given; dir gets mode. A half-old,
// half-new tree is worse than an error, so a dir with content is refused.
func Fill(dir string, mode fs.FileMode, fill func(tmp string) error) (err error) {
	if err := checkEmpty(dir); err != nil {
		return err
	}
	parent, base := filepath.Split(filepath.Clean(dir))
	if parent == "" {
		parent = "."
	}
	// The parent may be new too (the first version's directory on a fresh node).
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("creating the parent of %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating a temporary directory for %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			if rmErr := os.RemoveAll(tmp); rmErr != nil {
				err = errors.Join(err, fmt.Errorf("removing %s: %w", tmp, rmErr))
			}
		}
	}()
	if err := fill(tmp); err != nil {
		return err
	}
	// MkdirTemp made it 0700.
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	// An empty dir was accepted above; rename(2) needs it gone.
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("replacing empty directory %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("moving %s into place: %w", dir, err)
	}
	return nil
}

func checkEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("checking target directory %s: %w", dir, err)
	case len(entries) > 0:
		return fmt.Errorf("target directory %s is not empty", dir)
	}
	return nil
}
