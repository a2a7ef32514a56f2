package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"

	"github.com/opengravity/gravity/internal/clusterimage"
)

// imageSizes are a base image's size figures: the file on disk, what its
// entries weigh (the node binary and each blob once, compressed layers as
// they are) and what they weigh unpacked (layers decompressed).
type imageSizes struct {
	File, Compressed, Unpacked int64
	Blobs                      []blobSize // largest first
}

type blobSize struct {
	Digest           string
	Size, Unpacked   int64
	Users            []string // "ref layer N" for each manifest naming it
	compressed, json bool
}

// measure reads a cluster image once, decompressing every layer blob.
func measure(path string) (imageSizes, error) {
	f, err := os.Open(path)
	if err != nil {
		return imageSizes{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return imageSizes{}, err
	}
	sz := imageSizes{File: fi.Size()}
	docs := map[string][]byte{} // small JSON blobs, to name the layers' users
	tr := tar.NewReader(bufio.NewReaderSize(f, 1<<20))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return sz, fmt.Errorf("%s: %w", path, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		b, err := measureEntry(tr, hdr, docs)
		if err != nil {
			return sz, fmt.Errorf("%s: %s: %w", path, hdr.Name, err)
		}
		sz.Compressed += b.Size
		sz.Unpacked += b.Unpacked
		if strings.HasPrefix(hdr.Name, clusterimage.BlobsSHA256+"/") {
			sz.Blobs = append(sz.Blobs, b)
		}
	}
	nameUsers(sz.Blobs, docs)
	sort.Slice(sz.Blobs, func(i, j int) bool { return sz.Blobs[i].Size > sz.Blobs[j].Size })
	return sz, nil
}

// measureEntry sizes one entry (Digest: its name, or a blob's digest);
// JSON documents up to 1 MiB are kept, by that name.
func measureEntry(r io.Reader, hdr *tar.Header, docs map[string][]byte) (blobSize, error) {
	b := blobSize{Digest: hdr.Name, Size: hdr.Size}
	if hex, ok := strings.CutPrefix(hdr.Name, clusterimage.BlobsSHA256+"/"); ok {
		b.Digest = "sha256:" + hex
	}
	br := bufio.NewReader(r)
	magic, _ := br.Peek(4)
	var zr io.Reader
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return b, err
		}
		zr = gz
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zd, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return b, err
		}
		defer zd.Close()
		zr = zd
	case len(magic) > 0 && magic[0] == '{' && hdr.Size < 1<<20:
		raw, err := io.ReadAll(br)
		docs[b.Digest] = raw
		b.Unpacked, b.json = int64(len(raw)), true
		return b, err
	default:
		n, err := io.Copy(io.Discard, br)
		b.Unpacked = n
		return b, err
	}
	n, err := io.Copy(io.Discard, zr)
	b.Unpacked, b.compressed = n, true
	return b, err
}

// nameUsers labels each blob with the roots' manifests that name it, from
// packages/index.json down (one level of index is enough for base images).
func nameUsers(blobs []blobSize, docs map[string][]byte) {
	users := map[string][]string{}
	var idx v1.IndexManifest
	if json.Unmarshal(docs[clusterimage.IndexFile], &idx) != nil {
		return
	}
	for _, root := range idx.Manifests {
		ref := root.Annotations[clusterimage.AnnotationRefName]
		var m v1.Manifest
		if json.Unmarshal(docs[root.Digest.String()], &m) != nil {
			continue
		}
		users[m.Config.Digest.String()] = append(users[m.Config.Digest.String()], ref+" config")
		for i, l := range m.Layers {
			users[l.Digest.String()] = append(users[l.Digest.String()], fmt.Sprintf("%s layer %d", ref, i))
		}
		users[root.Digest.String()] = append(users[root.Digest.String()], ref+" manifest")
	}
	for i := range blobs {
		blobs[i].Users = users[blobs[i].Digest]
	}
}

func (s imageSizes) print(w io.Writer, path string, verbose bool) {
	const mb = 1e6
	fmt.Fprintf(w, "base image: %.1f MB compressed, %.1f MB unpacked (%s: %.1f MB on disk)\n",
		float64(s.Compressed)/mb, float64(s.Unpacked)/mb, path, float64(s.File)/mb)
	if !verbose {
		return
	}
	for _, b := range s.Blobs {
		if b.json {
			continue
		}
		fmt.Fprintf(w, "  %s %8.1f MB (%6.1f MB unpacked) %s\n", b.Digest[:19], float64(b.Size)/mb, float64(b.Unpacked)/mb, strings.Join(b.Users, ", "))
	}
}
