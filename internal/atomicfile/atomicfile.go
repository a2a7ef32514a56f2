// Package atomicfile replaces files so that a reader, or a crash, sees the
// old content or the new one, never half of it: the content goes to a
// temporary file beside the target, is synced, and is renamed (or linked)
// into place. Plans, configs, keys and store indexes are written this way.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile replaces path with data and mode. The directory must exist.
func WriteFile(path string, data []byte, mode fs.FileMode) error {
	return Write(path, mode, bytesFill(data))
}

// CreateFile is WriteFile for a file that must never be clobbered, such as
// a CA key: it fails with an error matching fs.ErrExist if path exists,
// even if it appeared while the content was being written.
func CreateFile(path string, data []byte, mode fs.FileMode) error {
	return write(path, mode, bytesFill(data), os.Link)
}

// Write replaces path with what fill writes. If fill fails, path is not
// touched and the temporary file is removed.
func Write(path string, mode fs.FileMode, fill func(io.Writer) error) error {
	return write(path, mode, fill, os.Rename)
}

// Symlink makes link point at target, replacing what link was: a reader
// sees the old link or the new one, never none.
func Symlink(target, link string) error {
	tmp := link + ".gravity-new"
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// CopyFile replaces dst with a copy of src, streamed (binaries are tens of
// megabytes). Copying a file onto itself changes nothing.
func CopyFile(src, dst string, mode fs.FileMode) error {
	if fs, err := os.Stat(src); err == nil {
		if fd, err := os.Stat(dst); err == nil && os.SameFile(fs, fd) {
			return nil
		}
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return Write(dst, mode, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

func bytesFill(data []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}
}

func write(path string, mode fs.FileMode, fill func(io.Writer) error, commit func(tmp, path string) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		// After a rename there is nothing left to remove; after a link, the
		// temporary name must go either way.
		if rmErr := os.Remove(f.Name()); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) && err == nil {
			err = fmt.Errorf("write %s: remove temporary file: %w", path, rmErr)
		}
	}()
	if err := fillFile(f, mode, fill); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := commit(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return SyncDir(dir)
}

func fillFile(f *os.File, mode fs.FileMode, fill func(io.Writer) error) error {
	// Chmod the descriptor before writing: the umask must not decide a
	// key's mode, and no reader may see the content under a wider one.
	err := f.Chmod(mode)
	if err == nil {
		err = fill(f)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// SyncDir makes a rename or link in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
