package baseimage

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
)

// ImageSpec describes a system image: the cluster's own images (pause,
// CoreDNS, hook tools) are never pulled but assembled from layers built by
// BuildLayer, so a layer shared with the runtime package or another image
// is one blob, stored and shipped once.
type ImageSpec struct {
	Ref        string     // in-cluster name, e.g. registry.local:5000/gravitational/pause:3.10
	Layers     []v1.Layer // bottom first
	Entrypoint []string
	Cmd        []string
	Env        []string
	User       string // numeric uid[:gid]; empty is root
}

// LayerSpec is the content of one layer; parent directories are added.
type LayerSpec struct {
	Files    []ImageFile       // regular files copied from the build machine
	Symlinks map[string]string // link path → target, e.g. "bin/sh" → "busybox"
}

// ImageFile is one file of a LayerSpec.
type ImageFile struct {
	Path   string // inside the layer, relative: "usr/local/bin/helm"
	Source string // on the build machine
	Mode   int64
}

var imageEpoch = time.Unix(0, 0).UTC()

// Layer compression, chosen by measurement on the runtime binaries (see
// docs/cluster-image-format.md): zstd's strongest level with a window of up
// to 128 MiB. The window lets one layer's binaries share their common Go
// code (the "rest" layer: 60 → 40 MB) and 128 MiB is the largest zstd's own
// decoder accepts without --long. Concurrency 1 keeps the encoder's output
// a function of its input and options alone.
const maxLayerWindow = 128 << 20

// BuildLayer writes spec as a deterministic zstd-compressed tar in workDir
// (which must outlive the layer's use) and returns it as an OCI zstd layer.
// Compressing once into a file matters: tarball would otherwise compress
// again on every read of the layer.
func BuildLayer(spec LayerSpec, workDir string) (v1.Layer, error) {
	f, err := os.CreateTemp(workDir, "layer-*.tar")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name()) // the compressed copy is what the layer reads
	err = writeImageLayer(f, spec)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = compressFile(f.Name(), f.Name()+".zst")
	}
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", f.Name(), err)
	}
	return tarball.LayerFromFile(f.Name()+".zst",
		tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
}

// compressFile compresses src into dst with a window no larger than src:
// decoders allocate by the window the frame announces (Go's, containerd's,
// twice it), so a 2 KB layer must not announce 128 MiB. The frame records
// the content size too, for the same reason.
func compressFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	zw, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression),
		zstd.WithWindowSize(layerWindow(fi.Size())), zstd.WithEncoderConcurrency(1))
	if err != nil {
		out.Close()
		return err
	}
	zw.ResetContentSize(out, fi.Size())
	_, err = io.Copy(zw, in)
	return errors.Join(err, zw.Close(), out.Close())
}

// layerWindow is the smallest power of two that holds size, within zstd's
// bounds and maxLayerWindow.
func layerWindow(size int64) int {
	w := zstd.MinWindowSize
	for w < maxLayerWindow && int64(w) < size {
		w <<= 1
	}
	return w
}

// BuildImage makes a deterministic linux/amd64 OCI image of spec's layers:
// fixed times and owners, so the same layers give the same digest. OCI
// rather than Docker media types, as Docker's schema has no zstd layers.
func BuildImage(spec ImageSpec) (v1.Image, error) {
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, spec.Layers...)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", spec.Ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", spec.Ref, err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Created = "amd64", "linux", v1.Time{Time: imageEpoch}
	cf.Config = v1.Config{Entrypoint: spec.Entrypoint, Cmd: spec.Cmd, Env: spec.Env, User: spec.User}
	return mutate.ConfigFile(img, cf)
}

// writeImageLayer writes the layer tarball: every entry in path order, so
// parent directories come before what they hold.
func writeImageLayer(w io.Writer, spec LayerSpec) error {
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
