package tele

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/opengravity/gravity/internal/baseimage"
	"github.com/opengravity/gravity/internal/cli/output"
)

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := NewCommand(&stdout, &stderr)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return stdout.String(), stderr.String(), err
}

func TestVersionJSON(t *testing.T) {
	out, _, err := run(t, "version", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]string
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, k := range []string{"version", "gitCommit", "kubernetesVersion", "helmVersion"} {
		if v[k] == "" {
			t.Errorf("version -o json lacks %s: %s", k, out)
		}
	}
	if _, _, err := run(t, "version", "-o", "xml"); err == nil || !strings.Contains(err.Error(), "xml") {
		t.Errorf("bad -o value: err = %v", err)
	}
}

// TestBuildFromLoadedImages walks the air-gapped path through the CLI: load
// images from a docker archive, list base images, build, inspect.
func TestBuildFromLoadedImages(t *testing.T) {
	state, bases, work := t.TempDir(), t.TempDir(), t.TempDir()
	gravity := filepath.Join(work, "gravity-bin")
	if err := os.WriteFile(gravity, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := baseimage.Build(context.Background(), baseimage.BuildOptions{
		Name: "gravity", Version: "0.1.0", Kubernetes: "v1.37.2", Gravity: gravity,
		Output: filepath.Join(bases, "gravity-0.1.0.tar"),
	})
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(work, "images.tar")
	refs := map[name.Reference]v1.Image{}
	for _, ref := range []string{"alpine:3.3", "quay.io/gravitational/debian-tall:stretch"} {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		tag, err := name.NewTag(ref)
		if err != nil {
			t.Fatal(err)
		}
		refs[tag] = img
	}
	if err := tarball.MultiRefWriteToFile(archive, refs); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "--state-dir", state, "image", "load", archive)
	if err != nil || !strings.Contains(out, "alpine:3.3") {
		t.Fatalf("image load: %v\n%s", err, out)
	}
	out, _, err = run(t, "--state-dir", state, "ls", "--base-image-dir", bases)
	if err != nil || !strings.Contains(out, "gravity:0.1.0") {
		t.Fatalf("ls: %v\n%s", err, out)
	}
	image := filepath.Join(work, "cluster-image-0.0.1.tar")
	out, _, err = run(t, "--state-dir", state, "build", "../../../examples/gravity101/v1/app.yaml",
		"--base-image-dir", bases, "--offline", "-o", image)
	if err != nil || !strings.Contains(out, "Build completed in") {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, _, err = run(t, "inspect", image, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "registry.local:5000/alpine:3.3") {
		t.Errorf("inspect does not list the vendored image:\n%s", out)
	}
	checkInspectRefusesCopies(t, image)
	out, _, err = run(t, "--state-dir", state, "build", "../../../examples/gravity101/v1/app.yaml", "-q",
		"--base-image-dir", bases, "--offline", "-o", image, "--overwrite")
	if err != nil || out != "" {
		t.Errorf("build -q: err %v, printed %q", err, out)
	}
}

// checkInspectRefusesCopies: plain inspect, reading only the first entry,
// refuses a copy cut short or with bytes appended, prints no listing and
// exits 3; --verify too.
func checkInspectRefusesCopies(t *testing.T, image string) {
	t.Helper()
	full, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	n := len(full)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"third", full[:n/3], fmt.Sprintf("is truncated: %d of its %d bytes are missing", n-n/3, n)},
		{"appended", append(bytes.Clone(full), "junk"...), "has 4 bytes appended"},
	} {
		copied := filepath.Join(t.TempDir(), "copy.tar")
		if err := os.WriteFile(copied, tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"inspect", copied}, {"inspect", "--verify", copied}} {
			out, _, err := run(t, args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || out != "" {
				t.Errorf("%s: %v: err = %v, printed %q; want %q and no listing", tc.name, args, err, out, tc.want)
			}
			if code := output.ExitCode(err); code != output.ExitIncomplete {
				t.Errorf("%s: %v: exit code %d, want %d", tc.name, args, code, output.ExitIncomplete)
			}
		}
	}
}
