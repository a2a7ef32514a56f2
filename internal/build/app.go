package build

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"github.com/opengravity/gravity/internal/clusterimage"
	"github.com/opengravity/gravity/internal/store"
)

// appResourcesDir is where the app's files sit inside its package, as in
// Gravity; hooks see them at /var/lib/gravity/resources.
const appResourcesDir = "resources"

// createApp packs the app directory (with rewritten image references) into
// the app package and stores it.
func createApp(ctx context.Context, st *buildState) error {
	m := st.app.Manifest
	ref := m.Locator()
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeAppTar(ctx, pw, st.app.Dir, st.ignored(), st.rewrites))
	}()
	meta := store.PackageMeta{
		Name: m.Metadata.Name, Version: m.Metadata.ResourceVersion, Kind: "app",
		Description: m.Metadata.Description,
	}
	entry, err := st.store.PutPackage(ctx, ref, meta, pr)
	pr.CloseWithError(err) // unblocks the writer if the store gave up early
	if err != nil {
		return fmt.Errorf("storing application package %s: %w", ref, err)
	}
	desc, err := st.store.Descriptor(ref)
	if err != nil {
		return err
	}
	st.appEntry = entry
	st.entries = append(st.entries, clusterimage.Entry{Ref: ref, Kind: "package", Descriptor: desc})
	st.printf("Created application package %s", ref)
	return nil
}

// writeAppTar writes dir as a deterministic tar: sorted entries, fixed
// times and owners, so the same resources always make the same package.
func writeAppTar(ctx context.Context, w io.Writer, dir string, ignore []string, rewrites map[string][]byte) error {
	files, err := appFiles(dir, ignore)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	for _, rel := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := addAppFile(tw, dir, rel, rewrites); err != nil {
			return err
		}
	}
	return tw.Close()
}

func appFiles(dir string, ignore []string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if isIgnored(rel, ignore) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s: symbolic links are not supported in application resources", rel)
		case d.IsDir(), d.Type().IsRegular():
			files = append(files, rel)
			return nil
		default:
			return fmt.Errorf("%s: not a regular file or directory", rel)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("reading application resources in %s: %w", dir, err)
	}
	sort.Strings(files)
	return files, nil
}

func isIgnored(rel string, ignore []string) bool {
	for _, pattern := range ignore {
		if ok, _ := path.Match(pattern, rel); ok {
			return true
		}
		if ok, _ := path.Match(pattern, path.Base(rel)); ok {
			return true
		}
	}
	return false
}

var epoch = time.Unix(0, 0).UTC()

func addAppFile(tw *tar.Writer, dir, rel string, rewrites map[string][]byte) error {
	fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: path.Join(appResourcesDir, rel), ModTime: epoch, Format: tar.FormatPAX}
	if fi.IsDir() {
		hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, hdr.Name+"/", 0o755
		return tw.WriteHeader(hdr)
	}
	hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, fi.Size()
	if fi.Mode()&0o111 != 0 {
		hdr.Mode = 0o755
	}
	if data, ok := rewrites[rel]; ok {
		hdr.Size = int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyN(tw, f, fi.Size()); err != nil {
		return fmt.Errorf("packing %s: %w", rel, err)
	}
	return nil
}
