package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// builder builds targets from the runtime modules under Root into Out/bin,
// skipping those whose inputs did not change since the last build.
type builder struct {
	Root      string // the runtime/ directory with one Go module per upstream
	Out       string // build/runtime
	Versions  []byte // versions.mk as read
	Toolchain string // `go version` and, for cgo, the C side: part of every key
	Log       io.Writer
}

func (b *builder) binDir() string   { return filepath.Join(b.Out, "bin") }
func (b *builder) stampDir() string { return filepath.Join(b.Out, "stamps") }

// key hashes everything a target's bytes depend on that Go's build cache
// would otherwise have to rediscover by compiling: the target spec (flags,
// stamped versions), versions.mk, the module's go.mod, go.sum and Go files,
// and the toolchain.
func (b *builder) key(t target) (string, error) {
	h := sha256.New()
	spec, err := json.Marshal(t)
	if err != nil {
		return "", fmt.Errorf("encode target %s: %w", t.Name, err)
	}
	fmt.Fprintf(h, "spec %s\ntoolchain %s\nversions.mk %x\n", spec, b.Toolchain, sha256.Sum256(b.Versions))
	dir := filepath.Join(b.Root, t.Dir)
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return "", fmt.Errorf("list Go files of %s: %w", dir, err)
	}
	files = append(files, filepath.Join(dir, "go.mod"), filepath.Join(dir, "go.sum"))
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if os.IsNotExist(err) && filepath.Base(f) == "go.sum" {
			continue // a module without dependencies has none
		}
		if err != nil {
			return "", fmt.Errorf("hash %s: %w", f, err)
		}
		fmt.Fprintf(h, "%s %x\n", filepath.Base(f), sha256.Sum256(data))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// upToDate says whether t's binary exists and was built from the same key.
func (b *builder) upToDate(t target, key string) bool {
	old, err := os.ReadFile(filepath.Join(b.stampDir(), t.Name+".key"))
	if err != nil || strings.TrimSpace(string(old)) != key {
		return false
	}
	_, err = os.Stat(filepath.Join(b.binDir(), t.Name))
	return err == nil
}

// buildArgs is the `go build` command line for t.
func buildArgs(t target, out string) []string {
	ld := []string{"-s", "-w"}
	for _, x := range t.X {
		ld = append(ld, "-X", x)
	}
	if t.Cgo {
		ld = append(ld, "-extldflags", "-static")
	}
	args := []string{"-n", "19", "go", "build", "-trimpath"}
	if len(t.Tags) > 0 {
		args = append(args, "-tags", strings.Join(t.Tags, ","))
	}
	return append(args, "-ldflags", strings.Join(ld, " "), "-o", out, t.Pkg)
}

// build compiles t (niced: the machine is shared) and records its key and
// how long it took.
func (b *builder) build(ctx context.Context, t target, key string) (time.Duration, error) {
	tmp := filepath.Join(b.binDir(), "."+t.Name+".tmp")
	cmd := exec.CommandContext(ctx, "nice", buildArgs(t, tmp)...)
	cmd.Dir = filepath.Join(b.Root, t.Dir)
	cgo := "CGO_ENABLED=0"
	if t.Cgo {
		cgo = "CGO_ENABLED=1"
	}
	// GOTOOLCHAIN=local: a module asking for a newer Go must fail, not
	// download a toolchain the key does not know about.
	cmd.Env = append(os.Environ(), cgo, "GOTOOLCHAIN=local")
	cmd.Stdout, cmd.Stderr = b.Log, b.Log
	start := time.Now()
	if err := cmd.Run(); err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("build %s (%s in runtime/%s): %w", t.Name, t.Pkg, t.Dir, err)
	}
	took := time.Since(start)
	if err := os.Rename(tmp, filepath.Join(b.binDir(), t.Name)); err != nil {
		return 0, fmt.Errorf("install %s: %w", t.Name, err)
	}
	if err := b.link(t); err != nil {
		return 0, err
	}
	// The build time is kept beside the key for docs/runtime.md.
	secs := fmt.Sprintf("%.0f\n", took.Seconds())
	if err := os.WriteFile(filepath.Join(b.stampDir(), t.Name+".seconds"), []byte(secs), 0o644); err != nil {
		return 0, fmt.Errorf("write build time of %s: %w", t.Name, err)
	}
	if err := os.WriteFile(filepath.Join(b.stampDir(), t.Name+".key"), []byte(key+"\n"), 0o644); err != nil {
		return 0, fmt.Errorf("write stamp of %s: %w", t.Name, err)
	}
	return took, nil
}

// link makes the names a multicall binary answers to, as relative symlinks
// so that bin/ can be copied as a tree.
func (b *builder) link(t target) error {
	for _, l := range t.Links {
		p := filepath.Join(b.binDir(), l)
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("replace link %s: %w", l, err)
		}
		if err := os.Symlink(t.Name, p); err != nil {
			return fmt.Errorf("link %s -> %s: %w", l, t.Name, err)
		}
	}
	return nil
}

// toolchain describes the compilers: `go version`, plus the C compiler and
// libseccomp that runc links in statically.
func toolchain(ctx context.Context) (string, error) {
	var parts []string
	for _, c := range [][]string{
		{"go", "version"},
		{"cc", "--version"},
		{"pkg-config", "--modversion", "libseccomp"},
	} {
		out, err := exec.CommandContext(ctx, c[0], c[1:]...).Output()
		if err != nil {
			return "", fmt.Errorf("%s: %w (runc needs a C compiler, pkg-config and libseccomp-dev)",
				strings.Join(c, " "), err)
		}
		parts = append(parts, strings.TrimSpace(string(out)))
	}
	return strings.Join(parts, "\n"), nil
}
