package baseimage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

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
	// HelmCompat is the helm wrapper (cmd/helm), which gives hooks written
	// for Helm 2 Helm 2's command line: it is bin/helm, and the runtime's
	// upstream Helm 3 bin/helm3, where it looks for it. Empty: the
	// upstream helm is bin/helm.
	HelmCompat string
}

// Names of what the base image carries, shared with the installer.
const (
	RuntimePackage = "gravitational.io/runtime"
	ImagePause     = "registry.local:5000/gravitational/pause"
	ImageCoreDNS   = "registry.local:5000/gravitational/coredns"
	ImageHookTools = "registry.local:5000/gravitational/hook-tools"
)

// runtimeEntries stores the runtime package and system images in s and
// returns them as cluster image entries. The package's layers are the very
// blobs the hook tools image is made of, so each binary is shipped once.
func runtimeEntries(ctx context.Context, s *store.Store, o BuildOptions, workDir string) ([]clusterimage.Entry, error) {
	ls, err := buildLayers(o.Runtime, workDir)
	if err != nil {
		return nil, err
	}
	pkgRef := RuntimePackage + ":" + o.Version
	meta := store.PackageMeta{Name: "runtime", Version: o.Version, Kind: "runtime",
		Description: "Kubernetes " + o.Kubernetes + " runtime binaries"}
	if _, err := s.PutPackageLayers(ctx, pkgRef, meta, ls.pkg()); err != nil {
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
	for _, spec := range systemImages(o, ls) {
		img, err := BuildImage(spec)
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

// Layers of the base image, by name. The runtime package is kube + helm +
// rest, unpacked in that order into one directory (bin/…).
const (
	layerKube    = "kube"    // bin/kube and its multicall links (kubelet → kube, …)
	layerHelm    = "helm"    // bin/helm (the Helm 2 wrapper) and bin/helm3 (upstream)
	layerRest    = "rest"    // every other runtime binary
	layerCoreDNS = "coredns" // /coredns, the CoreDNS image's only layer
	layerPause   = "pause"   // /pause
	layerShell   = "shell"   // busybox and its applet links, for the hook tools
	layerTools   = "tools"   // /usr/local/bin links to kubectl and helm
)

type layers map[string]v1.Layer

func (ls layers) pkg() []v1.Layer { return []v1.Layer{ls[layerKube], ls[layerHelm], ls[layerRest]} }

// systemImages are the images the cluster itself runs, all built here.
func systemImages(o BuildOptions, ls layers) []ImageSpec {
	return []ImageSpec{{
		Ref:        ImagePause + ":" + o.Version,
		Layers:     []v1.Layer{ls[layerPause]},
		Entrypoint: []string{"/pause"},
		User:       "65535:65535",
	}, {
		Ref:        ImageCoreDNS + ":" + o.Runtime.CoreDNS,
		Layers:     []v1.Layer{ls[layerCoreDNS]},
		Entrypoint: []string{"/coredns"},
		User:       "65532:65532",
	}, {
		// Hooks get helm and kubectl from here; the shell makes it usable
		// as a hook image of its own. The kube and helm layers are the
		// runtime package's.
		Ref:    ImageHookTools + ":" + o.Version,
		Layers: []v1.Layer{ls[layerShell], ls[layerKube], ls[layerHelm], ls[layerTools]},
		Env:    []string{"PATH=/usr/local/bin:/bin"},
		Cmd:    []string{"/bin/sh"},
	}}
}

// layerSpecs says what goes in which layer. CoreDNS is only in its image:
// the node never runs it as a process, only as a pod.
func layerSpecs(rt *Runtime) (map[string]LayerSpec, error) {
	specs, err := binLayerSpecs(rt.BinDir, rt.HelmCompat != "")
	if err != nil {
		return nil, err
	}
	if rt.HelmCompat != "" {
		spec := specs[layerHelm]
		spec.Files = append(spec.Files, ImageFile{Path: "bin/helm", Source: rt.HelmCompat, Mode: 0o755})
		specs[layerHelm] = spec
	}
	specs[layerPause] = LayerSpec{Files: []ImageFile{{Path: "pause", Source: rt.Pause}}}
	shell := map[string]string{}
	for _, a := range []string{"sh", "cat", "ls", "cp", "mkdir", "rm", "sleep", "echo", "env", "grep", "sed", "tar", "wget", "nslookup"} {
		shell["bin/"+a] = "busybox"
	}
	specs[layerShell] = LayerSpec{Files: []ImageFile{{Path: "bin/busybox", Source: rt.Busybox}}, Symlinks: shell}
	// Relative, so that they resolve wherever the image's root is mounted.
	specs[layerTools] = LayerSpec{Symlinks: map[string]string{
		"usr/local/bin/kubectl": "../../../bin/kube",
		"usr/local/bin/helm":    "../../../bin/helm",
	}}
	return specs, nil
}

// binLayerSpecs sorts the files of the runtime's bin directory into the
// kube, helm, rest and coredns layers; a link goes with what it points to.
// helm3: the upstream helm goes in as bin/helm3, to make room for the
// wrapper.
func binLayerSpecs(dir string, helm3 bool) (map[string]LayerSpec, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	specs := map[string]LayerSpec{}
	for _, name := range []string{layerKube, layerHelm, layerRest, layerCoreDNS} {
		specs[name] = LayerSpec{Symlinks: map[string]string{}}
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		switch {
		case e.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return nil, err
			}
			specs[binLayerOf(target)].Symlinks["bin/"+e.Name()] = target
		case e.Type().IsRegular() && e.Name() == "coredns":
			spec := specs[layerCoreDNS]
			spec.Files = append(spec.Files, ImageFile{Path: "coredns", Source: p})
			specs[layerCoreDNS] = spec
		case e.Type().IsRegular():
			name := e.Name()
			if helm3 && name == "helm" {
				name = "helm3"
			}
			spec := specs[binLayerOf(name)]
			spec.Files = append(spec.Files, ImageFile{Path: "bin/" + name, Source: p, Mode: 0o755})
			specs[binLayerOf(name)] = spec
		default:
			return nil, fmt.Errorf("%s: not a regular file", p)
		}
	}
	return specs, nil
}

func binLayerOf(name string) string {
	switch name {
	case "kube":
		return layerKube
	case "helm", "helm3":
		return layerHelm
	}
	return layerRest
}

// buildLayers compresses every layer, two at a time on this
// many-binaries-few-cores job, biggest first so the last one is short.
func buildLayers(rt *Runtime, workDir string) (layers, error) {
	specs, err := layerSpecs(rt)
	if err != nil {
		return nil, err
	}
	order := []string{layerKube, layerRest, layerCoreDNS, layerHelm, layerShell, layerPause, layerTools}
	var mu sync.Mutex
	out, errs := layers{}, make([]error, len(order))
	sem := make(chan struct{}, max(1, min(2, runtime.GOMAXPROCS(0))))
	var wg sync.WaitGroup
	for i, name := range order {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			l, err := BuildLayer(specs[name], workDir)
			if err != nil {
				errs[i] = fmt.Errorf("%s layer: %w", name, err)
				return
			}
			mu.Lock()
			out[name] = l
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}
