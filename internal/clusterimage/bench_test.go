package clusterimage

import (
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
)

// BenchmarkWrite writes a cluster image from ~200 MB of blobs; MB/s is the
// rate over the blobs and files embedded.
func BenchmarkWrite(b *testing.B) {
	f := newFixture(b, 1024)
	for i, ref := range []string{"registry.local:5000/big-a:1", "registry.local:5000/big-b:1"} {
		img, err := random.Image(10<<20, 10, random.WithSource(rand.NewSource(int64(100+i))))
		must(b, err)
		f.addImage(b, ref, img)
	}
	out := filepath.Join(b.TempDir(), "cluster-image-0.0.1.tar")
	spec := f.spec()
	var total int64
	opts := WriteOptions{Overwrite: true, Progress: func(_, t int64) { total = t }}
	must(b, Write(context.Background(), out, spec, opts))
	b.SetBytes(total)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		must(b, Write(context.Background(), out, spec, opts))
	}
	b.StopTimer()
	fi, err := os.Stat(out)
	must(b, err)
	b.ReportMetric(float64(fi.Size())/(1<<20), "MiB/image")
}
