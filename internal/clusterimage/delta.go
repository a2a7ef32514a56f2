package clusterimage

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Blobs lists the blobs a cluster image at path carries, with their sizes,
// from its tar headers alone (nothing is read or hashed; a delta built
// against it is checked when the cluster imports it). A delta image's
// left-out blobs count too: a cluster it upgraded has them.
func Blobs(path string) (*Meta, map[v1.Hash]int64, error) {
	img, err := Open(path)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	out := img.Meta.omitted()
	tr := tar.NewReader(f) // an *os.File: tar seeks past contents, reading headers only
	prefix := BlobsDir + "/sha256/"
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return &img.Meta, out, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, truncated(err))
		}
		hex, ok := strings.CutPrefix(hdr.Name, prefix)
		if !ok || hdr.Typeflag != tar.TypeReg {
			continue
		}
		h := v1.Hash{Algorithm: "sha256", Hex: hex}
		if !validDigest(h.String()) {
			return nil, nil, fmt.Errorf("%s: blob entry %q is not a sha256 digest", path, hdr.Name)
		}
		out[h] = hdr.Size
	}
}
