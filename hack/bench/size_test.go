package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opengravity/gravity/internal/baseimage"
)

func TestMeasure(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p string, size int) {
		if err := os.WriteFile(p, bytes.Repeat([]byte(filepath.Base(p)), size), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"kube", "helm", "etcd", "coredns"} {
		write(filepath.Join(bin, name), 10000)
	}
	for _, name := range []string{"pause", "busybox", "gravity"} {
		write(filepath.Join(dir, name), 1000)
	}
	out := filepath.Join(dir, "gravity-0.1.0.tar")
	o := baseimage.BuildOptions{Name: "gravity", Version: "0.1.0", Kubernetes: "v1.37.2", Gravity: filepath.Join(dir, "gravity"), Output: out,
		Runtime: &baseimage.Runtime{BinDir: bin, Pause: filepath.Join(dir, "pause"), Busybox: filepath.Join(dir, "busybox"), CoreDNS: "1.15.0"}}
	if err := baseimage.Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	sz, err := measure(out)
	if err != nil {
		t.Fatal(err)
	}
	if sz.Compressed <= 0 || sz.Compressed > sz.File {
		t.Errorf("compressed %d, file %d", sz.Compressed, sz.File)
	}
	// The fake binaries are repetitive: unpacked, the 4 runtime binaries,
	// the node binary, pause and busybox are at least their sizes.
	if sz.Unpacked < 4*4*10000+3*7*1000 || sz.Unpacked < sz.Compressed {
		t.Errorf("unpacked %d, compressed %d", sz.Unpacked, sz.Compressed)
	}
	var shared int
	for _, b := range sz.Blobs {
		if len(b.Users) == 2 && strings.Contains(b.Users[0]+b.Users[1], "hook-tools") && strings.Contains(b.Users[0]+b.Users[1], "runtime") {
			shared++
		}
	}
	if shared != 2 {
		t.Errorf("want the kube and helm layers shared by the runtime package and hook tools, got %d shared: %+v", shared, sz.Blobs)
	}
	var buf bytes.Buffer
	sz.print(&buf, out, false)
	if !strings.HasPrefix(buf.String(), "base image: ") || !strings.Contains(buf.String(), "MB compressed, ") {
		t.Errorf("printed %q", buf.String())
	}
}
