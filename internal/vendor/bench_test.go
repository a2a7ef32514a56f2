package vendor

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const benchLayerMB = 32

// BenchmarkVendorThroughput vendors a large image (GRAVITY_BENCH_IMAGE_MB,
// default 256) from a loopback registry into a fresh store and compares the
// rate with a plain file-to-file copy of the same bytes on the same disk.
func BenchmarkVendorThroughput(b *testing.B) {
	mb := 256
	if v, err := strconv.Atoi(os.Getenv("GRAVITY_BENCH_IMAGE_MB")); err == nil && v > 0 {
		mb = v
	}
	dir := b.TempDir()
	files := writeRandomLayers(b, dir, mb)
	img, total := layeredImage(b, files)
	srv := httptest.NewServer(fileRegistry(b, img, files))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/bench:latest"

	copyRate := copyThroughput(b, files, total, dir)
	b.SetBytes(total)
	b.ResetTimer()
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := newStore(b)
		b.StartTimer()
		start := time.Now()
		if _, err := Vendor(context.Background(), Options{Store: s}, []Request{{Ref: ref}}); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		b.StopTimer()
		os.RemoveAll(s.Path())
		b.StartTimer()
	}
	rate := float64(total) * float64(b.N) / elapsed.Seconds() / (1 << 20)
	b.ReportMetric(rate, "MB/s")
	b.ReportMetric(rate/copyRate, "copy-ratio")
	b.ReportMetric(peakRSSMB(b), "peak-rss-MB")
}

// writeRandomLayers writes gzipped single-file tar layers of random bytes,
// streaming, so the image never has to fit in memory.
func writeRandomLayers(b *testing.B, dir string, mb int) []string {
	var files []string
	for i := 0; mb > 0; i++ {
		n := min(mb, benchLayerMB)
		mb -= n
		p := filepath.Join(dir, fmt.Sprintf("layer%d.tar.gz", i))
		if err := writeRandomLayer(p, int64(n)<<20); err != nil {
			b.Fatal(err)
		}
		files = append(files, p)
	}
	return files
}

func writeRandomLayer(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	// Random bytes do not compress; storing them keeps generation fast.
	zw, _ := gzip.NewWriterLevel(bw, gzip.NoCompression)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "data", Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, rand.Reader, size); err != nil {
		return err
	}
	for _, c := range []io.Closer{tw, zw} {
		if err := c.Close(); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func layeredImage(b *testing.B, files []string) (v1.Image, int64) {
	img := empty.Image
	var total int64
	for _, p := range files {
		l, err := tarball.LayerFromFile(p)
		if err != nil {
			b.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			b.Fatal(err)
		}
		st, _ := os.Stat(p)
		total += st.Size()
	}
	return img, total
}

// fileRegistry serves one image: manifest and config from memory, layers
// straight from their files, so the registry side stays small too.
func fileRegistry(b *testing.B, img v1.Image, files []string) http.Handler {
	manifest, _ := img.RawManifest()
	mt, _ := img.MediaType()
	cfg, _ := img.RawConfigFile()
	cfgName, _ := img.ConfigName()
	m, _ := img.Manifest()
	blobs := map[string]string{}
	for i, l := range m.Layers {
		blobs[l.Digest.String()] = files[i]
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
			w.WriteHeader(http.StatusOK)
		case strings.HasPrefix(r.URL.Path, "/v2/bench/manifests/"):
			w.Header().Set("Content-Type", string(mt))
			w.Header().Set("Content-Length", strconv.Itoa(len(manifest)))
			w.Write(manifest)
		case r.URL.Path == "/v2/bench/blobs/"+cfgName.String():
			w.Write(cfg)
		case strings.HasPrefix(r.URL.Path, "/v2/bench/blobs/"):
			p, ok := blobs[strings.TrimPrefix(r.URL.Path, "/v2/bench/blobs/")]
			if !ok {
				http.NotFound(w, r)
				return
			}
			http.ServeFile(w, r, p)
		default:
			http.NotFound(w, r)
		}
	})
}

// copyThroughput is the MB/s of copying (and syncing, as the store does)
// the layer files on the same disk.
// copyThroughput is the median of three plain copies of the layer files:
// one copy alone swings by half with the page cache and other tenants.
func copyThroughput(b *testing.B, files []string, total int64, dir string) float64 {
	rates := make([]float64, 3)
	for r := range rates {
		start := time.Now()
		for i, p := range files {
			if err := copyFile(p, filepath.Join(dir, fmt.Sprintf("copy%d", i))); err != nil {
				b.Fatal(err)
			}
		}
		rates[r] = float64(total) / time.Since(start).Seconds() / (1 << 20)
		for i := range files {
			os.Remove(filepath.Join(dir, fmt.Sprintf("copy%d", i)))
		}
	}
	slices.Sort(rates)
	return rates[1]
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	return out.Sync()
}

func peakRSSMB(b *testing.B) float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Logf("peak RSS unavailable: %v", err)
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return float64(kb) / 1024
		}
	}
	return 0
}
