package baseimage

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestLayerWindow(t *testing.T) {
	for size, want := range map[int64]int{0: 1 << 10, 1 << 10: 1 << 10, 1<<10 + 1: 2 << 10, 60 << 20: 64 << 20, 155 << 20: 128 << 20} {
		if got := layerWindow(size); got != want {
			t.Errorf("layerWindow(%d) = %d, want %d", size, got, want)
		}
	}
}

// A small layer must announce a small window: decoders allocate by it.
func TestBuildLayerAnnouncesItsSize(t *testing.T) {
	src := filepath.Join(t.TempDir(), "busybox")
	if err := os.WriteFile(src, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := BuildLayer(LayerSpec{Files: []ImageFile{{Path: "bin/busybox", Source: src}}}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	var h zstd.Header
	if err := h.Decode(raw); err != nil {
		t.Fatal(err)
	}
	if !h.HasFCS || h.FrameContentSize > 8<<10 || h.WindowSize > 8<<10 {
		t.Errorf("frame header %+v: want the content size and a window of a few KiB", h)
	}
}
