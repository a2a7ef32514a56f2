package upgrade

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/opengravity/gravity/internal/install"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/store"
)

// Package is a package of the new image as the plan records it for a
// node: the node takes a payload's blobs only if they are these layers.
type Package struct {
	Ref    string            `json:"ref"`
	Meta   store.PackageMeta `json:"meta"`
	Layers []v1.Descriptor   `json:"layers"`
}

func encodePackages(pkgs []Package) string {
	data, err := json.Marshal(pkgs)
	if err != nil {
		panic(err) // plain structs always marshal
	}
	return string(data)
}

func decodePackages(s string) ([]Package, error) {
	var pkgs []Package
	if s == "" {
		return nil, nil
	}
	if err := json.Unmarshal([]byte(s), &pkgs); err != nil {
		return nil, fmt.Errorf("the phase's packages: %w", err)
	}
	return pkgs, nil
}

// packageOf is ref as st has it.
func packageOf(st *store.Store, ref string) (Package, error) {
	meta, _, layers, err := st.PackageLayers(ref)
	if err != nil {
		return Package{}, err
	}
	return Package{Ref: ref, Meta: meta, Layers: layers}, nil
}

// RuntimeRef is the runtime package of version v.
func RuntimeRef(v string) string { return "gravitational.io/runtime:" + v }

// runtimeVersion is the runtime version a node's bin dir belongs to
// (/usr/lib/gravity/<version>/bin).
func runtimeVersion(binDir string) string { return filepath.Base(filepath.Dir(binDir)) }

// writeBlobs streams the layers of pkgs from st as a tar of
// blobs/<algorithm>/<hex>, each once.
func writeBlobs(w io.Writer, st *store.Store, pkgs []Package) error {
	tw := tar.NewWriter(w)
	seen := map[v1.Hash]bool{}
	for _, p := range pkgs {
		for _, l := range p.Layers {
			if seen[l.Digest] {
				continue
			}
			seen[l.Digest] = true
			rc, size, err := st.Blob(l.Digest)
			if err != nil {
				return fmt.Errorf("package %s: %w", p.Ref, err)
			}
			err = tw.WriteHeader(&tar.Header{Name: "blobs/" + l.Digest.Algorithm + "/" + l.Digest.Hex, Mode: 0o600, Size: size, Typeflag: tar.TypeReg})
			if err == nil {
				_, err = io.Copy(tw, rc)
			}
			rc.Close()
			if err != nil {
				return fmt.Errorf("package %s: layer %s: %w", p.Ref, l.Digest, err)
			}
		}
	}
	return tw.Close()
}

// readBlobs takes the blobs of a writeBlobs tar into st: only the layers
// pkgs name, each checked against its digest and size as it is written.
func readBlobs(ctx context.Context, r io.Reader, st *store.Store, pkgs []Package) error {
	want := map[string]v1.Descriptor{}
	for _, p := range pkgs {
		for _, l := range p.Layers {
			want["blobs/"+l.Digest.Algorithm+"/"+l.Digest.Hex] = l
		}
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the packages sent: %w", err)
		}
		l, ok := want[hdr.Name]
		if !ok || hdr.Typeflag != tar.TypeReg {
			return fmt.Errorf("the packages sent hold %q, which is no layer of this phase's packages", hdr.Name)
		}
		if hdr.Size != l.Size {
			return fmt.Errorf("layer %s sent with %d bytes, not %d", l.Digest, hdr.Size, l.Size)
		}
		if err := st.WriteBlob(ctx, l.Digest, l.Size, tr); err != nil {
			return fmt.Errorf("layer %s: %w", l.Digest, err)
		}
	}
}

// bootstrap puts the phase's packages into a node's package store and,
// when the runtime changes, unpacks the new runtime beside the running
// one (/usr/lib/gravity/<version>), which stays until the operation ends:
// switching a node and switching it back are both a config change.
type bootstrap struct {
	stateDir string
	pkgs     []Package
	runtime  string // "" when the runtime does not change
	// payload is the blobs the driver sent (a writeBlobs tar); "" on the
	// driver itself, whose store has them.
	payload string
	// root is config.RuntimeRoot but in tests.
	root string
}

func (b bootstrap) Execute(ctx context.Context) error {
	st, err := store.Open(install.Config{StateDir: b.stateDir}.PackagesDir())
	if err != nil {
		return err
	}
	var missing []Package
	for _, p := range b.pkgs {
		for _, l := range p.Layers {
			if !st.HasBlob(l.Digest, l.Size) {
				missing = append(missing, p)
				break
			}
		}
	}
	if len(missing) > 0 {
		if b.payload == "" {
			return fmt.Errorf("package %s is not on this node and was not sent", missing[0].Ref)
		}
		f, err := os.Open(b.payload)
		if err != nil {
			return err
		}
		err = readBlobs(ctx, f, st, b.pkgs)
		f.Close()
		if err != nil {
			return err
		}
	}
	for _, p := range b.pkgs {
		if _, err := st.PutPackageDescriptors(ctx, p.Ref, p.Meta, p.Layers); err != nil {
			return err
		}
	}
	if b.runtime == "" {
		return nil
	}
	if err := b.pruneVersions(); err != nil {
		return err
	}
	dir := filepath.Join(b.root, b.runtime)
	if _, err := os.Stat(filepath.Join(dir, "bin", "kube")); err == nil {
		return nil // unpacked by an earlier run
	}
	return st.ExtractPackage(ctx, RuntimeRef(b.runtime), dir)
}

// pruneVersions removes the runtime versions the node neither runs nor is
// getting: one previous version is kept (the one running now, which a
// rollback of this upgrade, or of it once completed, switches back to),
// not every version the node ever had.
func (b bootstrap) pruneVersions() error {
	n, err := install.LocalNode(b.stateDir)
	if err != nil {
		return err
	}
	running := filepath.Dir(n.BinDir)
	if filepath.Dir(running) != filepath.Clean(b.root) {
		return nil // a custom layout: not ours to prune
	}
	entries, err := os.ReadDir(b.root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		dir := filepath.Join(b.root, e.Name())
		if !e.IsDir() || dir == running || e.Name() == b.runtime {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("removing runtime version %s: %w", e.Name(), err)
		}
	}
	return nil
}

// Rollback removes the new runtime's directory, unless the node still
// runs it (its switch back has not happened: that phase's rollback comes
// first). The packages stay in the store, which keeps every version.
func (b bootstrap) Rollback(ctx context.Context) error {
	if b.runtime == "" {
		return nil
	}
	n, err := install.LocalNode(b.stateDir)
	if err != nil {
		return err
	}
	dir := filepath.Join(b.root, b.runtime)
	if runtimeVersion(n.BinDir) == b.runtime || filepath.Dir(n.BinDir) == dir {
		return fmt.Errorf("node %s still runs runtime %s from %s: roll back its system upgrade first", n.Name, b.runtime, dir)
	}
	return os.RemoveAll(dir)
}

// newBootstrap is a bootstrap phase's executor on its node.
func newBootstrap(stateDir string, data map[string]string, payload string) (bootstrap, error) {
	pkgs, err := decodePackages(data[dataPackages])
	if err != nil {
		return bootstrap{}, err
	}
	return bootstrap{stateDir: stateDir, pkgs: pkgs, runtime: data[dataRuntime], payload: payload, root: config.RuntimeRoot}, nil
}

// remoteBootstrap sends a node the blobs of its packages from the
// driver's store, and has its agent take them.
type remoteBootstrap struct {
	remoteRun
	stateDir string
	pkgs     []Package
}

func (r remoteBootstrap) Execute(ctx context.Context) error {
	st, err := store.Open(install.Config{StateDir: r.stateDir}.PackagesDir())
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeBlobs(pw, st, r.pkgs)) }()
	err = r.agents.Run(ctx, r.addr, r.op, r.phase, false, pr)
	pr.CloseWithError(errors.New("the phase ended"))
	return err
}
