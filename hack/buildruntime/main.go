// Command buildruntime builds the Kubernetes runtime binaries of the base
// image (`make runtime`) from the pinned upstream modules under runtime/, one
// Go module per upstream project so each builds with the dependency versions
// its own release was tested with.
//
// Versions are set in versions.mk; the go.mod files must agree with it, and
// the build stops before compiling anything if they do not. A binary is
// rebuilt only when its key (versions.mk, its module's go.mod, go.sum and Go
// files, its flags, the toolchain) changed, so a rebuild with nothing changed
// takes seconds. Builds run one at a time and niced: each `go build` of
// Kubernetes peaks near 3 GB and the machine is shared.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	root := flag.String("root", "runtime", "directory holding the runtime Go modules")
	versions := flag.String("versions", "versions.mk", "the pinned versions")
	out := flag.String("out", "build/runtime", "output directory (binaries in bin/)")
	only := flag.String("only", "", "comma-separated binaries to build (default all)")
	check := flag.Bool("check", false, "only check that versions.mk and the go.mod files agree")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *root, *versions, *out, *only, *check); err != nil {
		fmt.Fprintln(os.Stderr, "buildruntime:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, root, versionsFile, out, only string, checkOnly bool) error {
	data, err := os.ReadFile(versionsFile)
	if err != nil {
		return fmt.Errorf("read versions: %w", err)
	}
	vars, err := parseVersions(data)
	if err != nil {
		return err
	}
	if err := checkPins(ctx, root, vars, pins); err != nil {
		return err
	}
	if err := checkStaging(ctx, filepath.Join(root, "kube"), vars["KUBERNETES_VERSION"], kubeStaging); err != nil {
		return err
	}
	if checkOnly {
		return nil
	}
	tc, err := toolchain(ctx)
	if err != nil {
		return err
	}
	st, err := readStamps(ctx, root)
	if err != nil {
		return err
	}
	// go build runs inside each module, so -o must not be relative.
	absOut, err := filepath.Abs(out)
	if err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	b := &builder{Root: root, Out: absOut, Versions: data, Toolchain: tc, Log: os.Stderr}
	ts, err := selectTargets(targets(vars, st), only)
	if err != nil {
		return err
	}
	return b.buildAll(ctx, ts)
}

// selectTargets keeps the targets named in only (all when empty).
func selectTargets(all []target, only string) ([]target, error) {
	if only == "" {
		return all, nil
	}
	byName := map[string]target{}
	for _, t := range all {
		byName[t.Name] = t
	}
	var out []target
	for _, n := range strings.Split(only, ",") {
		t, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("no runtime binary %q", n)
		}
		out = append(out, t)
	}
	return out, nil
}

func (b *builder) buildAll(ctx context.Context, ts []target) error {
	for _, d := range []string{b.binDir(), b.stampDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	for _, t := range ts {
		key, err := b.key(t)
		if err != nil {
			return err
		}
		if b.upToDate(t, key) {
			fmt.Printf("%-24s up to date\n", t.Name)
			continue
		}
		fmt.Printf("%-24s building %s\n", t.Name, t.Pkg)
		took, err := b.build(ctx, t, key)
		if err != nil {
			return err
		}
		fmt.Printf("%-24s built in %s\n", t.Name, took.Round(time.Second))
	}
	return nil
}
