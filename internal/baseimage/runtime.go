package baseimage

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/opengravity/gravity/internal/clusterimage"
	"github.com/opengravity/gravity/internal/store"
)

// Runtime is what a base image carries besides the gravity binary: the
// runtime binaries as one package, and the system images built from them.
type Runtime struct {
	BinDir  string // build/runtime/bin: kube (multicall), etcd, containerd, runc, CNI plugins, registry, coredns, helm
	Pause   string // the pause binary (cmd/pause)
	Busybox string // a static busybox for the hook tools image's shell
	CoreDNS string // CoreDNS version, the tag of its image
}

// Names of what the base image carries, shared with the installer.
const (
	RuntimePackage = "gravitational.io/runtime"
	ImagePause     = "registry.local:5000/gravitational/pause"
	ImageCoreDNS   = "registry.local:5000/gravitational/coredns"
	ImageHookTools = "registry.local:5000/gravitational/hook-tools"
)

// runtimeEntries stores the runtime package and system images in s and
// returns them as cluster image entries.
func runtimeEntries(ctx context.Context, s *store.Store, o BuildOptions, workDir string) ([]clusterimage.Entry, error) {
	rt := o.Runtime
	pkgRef := RuntimePackage + ":" + o.Version
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeBinTar(pw, rt.BinDir)) }()
	meta := store.PackageMeta{Name: "runtime", Version: o.Version, Kind: "runtime",
		Description: "Kubernetes " + o.Kubernetes + " runtime binaries"}
	_, err := s.PutPackage(ctx, pkgRef, meta, pr)
	pr.CloseWithError(err)
	if err != nil {
		return nil, fmt.Errorf("runtime package: %w", err)
	}
	entries := []clusterimage.Entry{}
	add := func(ref, kind string) error {
		desc, err := s.Descriptor(ref)
		if err != nil {
			return err
		}
		entries = append(entries, clusterimage.Entry{Ref: ref, Kind: kind, Descriptor: desc})
		return nil
	}
	if err := add(pkgRef, clusterimage.KindPackage); err != nil {
		return nil, err
	}
	for _, spec := range systemImages(o) {
		img, err := BuildImage(spec, workDir)
		if err != nil {
			return nil, err
		}
		if _, err := s.PutImage(ctx, spec.Ref, img); err != nil {
			return nil, fmt.Errorf("storing %s: %w", spec.Ref, err)
		}
		if err := add(spec.Ref, clusterimage.KindImage); err != nil {
			return nil, err
		}
	}
	return entries, nil
}

// systemImages are the images the cluster itself runs, all built here.
func systemImages(o BuildOptions) []ImageSpec {
	rt := o.Runtime
	bin := func(name string) string { return filepath.Join(rt.BinDir, name) }
	shell := map[string]string{}
	for _, a := range []string{"sh", "cat", "ls", "cp", "mkdir", "rm", "sleep", "echo", "env", "grep", "sed", "tar", "wget", "nslookup"} {
		shell["bin/"+a] = "busybox"
	}
	return []ImageSpec{{
		Ref:        ImagePause + ":" + o.Version,
		Files:      []ImageFile{{Path: "pause", Source: rt.Pause}},
		Entrypoint: []string{"/pause"},
		User:       "65535:65535",
	}, {
		Ref:        ImageCoreDNS + ":" + rt.CoreDNS,
		Files:      []ImageFile{{Path: "coredns", Source: bin("coredns")}},
		Entrypoint: []string{"/coredns"},
		User:       "65532:65532",
	}, {
		// Hooks get helm and kubectl from here (mounted at /usr/local/bin);
		// the shell makes it usable as a hook image of its own.
		Ref: ImageHookTools + ":" + o.Version,
		Files: []ImageFile{
			{Path: "bin/busybox", Source: rt.Busybox},
			{Path: "usr/local/bin/helm", Source: bin("helm")},
			{Path: "usr/local/bin/kubectl", Source: bin("kube")},
		},
		Symlinks: shell,
		Env:      []string{"PATH=/usr/local/bin:/bin"},
		Cmd:      []string{"/bin/sh"},
	}}
}

// writeBinTar packs every file of dir under bin/ with fixed metadata;
// multicall links (kube-apiserver → kube) stay links.
func writeBinTar(w io.Writer, dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: imageEpoch}); err != nil {
		return err
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if e.Type()&os.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := tw.WriteHeader(&tar.Header{Name: "bin/" + e.Name(), Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777, ModTime: imageEpoch}); err != nil {
				return err
			}
			continue
		}
		if !e.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", p)
		}
		if err := addImageFile(tw, ImageFile{Path: "bin/" + e.Name(), Source: p, Mode: 0o755}); err != nil {
			return err
		}
	}
	return tw.Close()
}
