// Command bench times a warm rebuild of the Gravity 101 example (every image
// and the base image already in the local store), as `make bench` reports it.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"
)

func main() {
	tele := flag.String("tele", "build/tele", "tele binary")
	stateDir := flag.String("state-dir", "", "tele state dir holding the example images")
	app := flag.String("app", "examples/gravity101/v1/app.yaml", "app manifest to build")
	runs := flag.Int("runs", 7, "timed runs after one warm-up")
	base := flag.String("base", "", "base image to measure (default: base-images/*.tar beside tele)")
	sizes := flag.Bool("sizes", false, "only measure the base image, listing every blob")
	flag.Parse()
	if err := measureBase(*tele, *base, *sizes); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if *sizes {
		return
	}
	if err := run(*tele, *stateDir, *app, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// measureBase prints the base image's size, the figure its goal is set in
// (<= 150 MB compressed).
func measureBase(tele, base string, verbose bool) error {
	paths := []string{base}
	if base == "" {
		var err error
		if paths, err = filepath.Glob(filepath.Join(filepath.Dir(tele), "base-images", "*.tar")); err != nil {
			return err
		}
	}
	for _, p := range paths {
		sz, err := measure(p)
		if err != nil {
			return err
		}
		sz.print(os.Stdout, p, verbose)
	}
	return nil
}

func run(tele, stateDir, app string, runs int) error {
	dir, err := os.MkdirTemp("", "gravity-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "image.tar")
	build := func() (time.Duration, error) {
		start := time.Now()
		cmd := exec.Command(tele, "--state-dir", stateDir, "build", app, "-q", "--overwrite", "--offline", "-o", out)
		cmd.Stderr = os.Stderr
		err := cmd.Run()
		return time.Since(start), err
	}
	if _, err := build(); err != nil {
		return fmt.Errorf("warm-up build: %w", err)
	}
	times := make([]time.Duration, runs)
	for i := range times {
		if times[i], err = build(); err != nil {
			return err
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	fi, err := os.Stat(out)
	if err != nil {
		return err
	}
	fmt.Printf("warm rebuild of %s: median %.3fs, min %.3fs, max %.3fs over %d runs (goal <= 2s); image %.1f MiB\n",
		app, times[len(times)/2].Seconds(), times[0].Seconds(), times[len(times)-1].Seconds(), runs,
		float64(fi.Size())/(1<<20))
	return nil
}
