package upgrade

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/install"
	"github.com/opengravity/gravity/internal/store"
)

// Upload imports the new cluster image into the cluster: its packages into
// this master's package store, then its container images into every
// master's registry. The image is verified whole and the disk checked
// before anything is copied; importing twice copies nothing new.
func Upload(ctx context.Context, o Options) error {
	img, err := o.openImage(ctx)
	if err != nil {
		return err
	}
	l, err := connect(ctx, o.StateDir)
	if err != nil {
		return err
	}
	info, err := cluster.LoadInfo(ctx, l.clients)
	if err != nil {
		return err
	}
	if img.meta.Name != info.App {
		return fmt.Errorf("this image is of application %s; the cluster runs %s", img.meta.Name, info.App)
	}
	storeDir := l.node.Paths().Packages
	if err := checkSpace(filepath.Join(img.dir, "packages"), storeDir); err != nil {
		return err
	}
	o.say("Importing application %s v%s", img.meta.Name, img.meta.Version)
	st, err := store.Open(storeDir)
	if err != nil {
		return err
	}
	load := st.Load
	if img.meta.Delta != nil {
		load = st.LoadDelta
	}
	entries, err := load(ctx, filepath.Join(img.dir, "packages"))
	var missing *store.MissingBlobsError
	if errors.As(err, &missing) {
		return fmt.Errorf("this image is a delta against %s and the cluster lacks what it leaves out (nothing was imported): %w", img.meta.Delta.From, missing)
	}
	if err != nil {
		return fmt.Errorf("importing the image's packages: %w", err)
	}
	var images []string
	for _, e := range entries {
		if e.Kind == store.KindImage {
			images = append(images, e.Ref)
		}
	}
	for _, m := range l.node.MasterIPs {
		o.say("Synchronizing application with Docker registry %s:5000", m)
		n := l.node
		n.IP = m
		if err := install.PushImages(ctx, n, st, images, io.Discard); err != nil {
			return fmt.Errorf("registry of master %s: %w", m, err)
		}
	}
	o.say("Application has been uploaded")
	return nil
}

// checkSpace refuses an upload whose blobs (all of them: the store keeps
// one copy of what it has already, so this errs on the safe side) do not
// fit in the store's file system.
func checkSpace(layout, storeDir string) error {
	var need int64
	err := filepath.WalkDir(filepath.Join(layout, "blobs"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if _, err := os.Stat(filepath.Join(storeDir, "blobs", filepath.Base(filepath.Dir(path)), d.Name())); err == nil {
			return nil // already in the store
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		need += fi.Size()
		return nil
	})
	if err != nil {
		return err
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(storeDir, &sfs); err != nil {
		return fmt.Errorf("free space of %s: %w", storeDir, err)
	}
	free := int64(sfs.Bavail) * int64(sfs.Bsize)
	if need > free {
		return fmt.Errorf("not enough disk space in %s for the new packages: %d MiB needed, %d MiB free", storeDir, need>>20, free>>20)
	}
	return nil
}
