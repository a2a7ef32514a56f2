package baseimage

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ImageSpec describes a one-layer system image built from local files: the
// cluster's own images (pause, CoreDNS, hook tools) are never pulled.
type ImageSpec struct {
	Ref        string            // in-cluster name, e.g. registry.local:5000/gravitational/pause:3.10
	Files      []ImageFile       // regular files copied from the build machine
	Symlinks   map[string]string // link path → target, e.g. "bin/sh" → "busybox"
	Entrypoint []string
	Cmd        []string
	Env        []string
	User       string // numeric uid[:gid]; empty is root
}

// ImageFile is one file of an ImageSpec.
type ImageFile struct {
	Path   string // inside the image, relative: "usr/local/bin/helm"
	Source string // on the build machine
	Mode   int64
}

var imageEpoch = time.Unix(0, 0).UTC()

// BuildImage makes a deterministic linux/amd64 image from spec: sorted
// entries, fixed times and owners, so the same files give the same digest.
// The layer is staged in workDir (binaries reach 150 MB), which must outlive
// the image's use.
func BuildImage(spec ImageSpec, workDir string) (v1.Image, error) {
	f, err := os.CreateTemp(workDir, "layer-*.tar")
	if err != nil {
		return nil, err
	}
	err = writeImageLayer(f, spec)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", spec.Ref, err)
	}
	l, err := tarball.LayerFromFile(f.Name())
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Created = "amd64", "linux", v1.Time{Time: imageEpoch}
	cf.Config = v1.Config{Entrypoint: spec.Entrypoint, Cmd: spec.Cmd, Env: spec.Env, User: spec.User}
	return mutate.ConfigFile(img, cf)
}

// writeImageLayer writes the layer tarball: every entry in path order, so
// parent directories come before what they hold.
func writeImageLayer(w io.Writer, spec ImageSpec) error {
	tw := tar.NewWriter(w)
	entries := map[string]func() error{}
	dirs := map[string]bool{}
	addDirs := func(p string) {
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for _, f := range spec.Files {
		f := f
		addDirs(f.Path)
		entries[f.Path] = func() error { return addImageFile(tw, f) }
	}
	for link, target := range spec.Symlinks {
		link, target := link, target
		addDirs(link)
		entries[link] = func() error {
			return tw.WriteHeader(&tar.Header{Name: link, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777, ModTime: imageEpoch, Format: tar.FormatPAX})
		}
	}
	for d := range dirs {
		d := d
		entries[d] = func() error {
			return tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: imageEpoch, Format: tar.FormatPAX})
		}
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := entries[n](); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addImageFile(tw *tar.Writer, f ImageFile) error {
	src, err := os.Open(f.Source)
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", f.Source)
	}
	mode := f.Mode
	if mode == 0 {
		mode = 0o755
	}
	hdr := &tar.Header{Name: f.Path, Typeflag: tar.TypeReg, Mode: mode, Size: fi.Size(), ModTime: imageEpoch, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, src, fi.Size()); err != nil {
		return fmt.Errorf("%s: %w", f.Source, err)
	}
	return nil
}
