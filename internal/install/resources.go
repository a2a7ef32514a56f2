package install

import (
	"archive/tar"
	"bytes"
	"io"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/opengravity/gravity/internal/store"
)

// resourcesSubPath is the directory of a resources image (and of an app
// package) that hooks see as /var/lib/gravity/resources.
const resourcesSubPath = "resources"

// packageImage turns an app package into an image whose layers are the
// package's own blobs, so hooks can mount the app's resources as an image
// volume without copying a byte.
func packageImage(st *store.Store, ref string) (v1.Image, error) {
	_, _, descs, err := st.PackageLayers(ref)
	if err != nil {
		return nil, err
	}
	var layers []v1.Layer
	for _, d := range descs {
		mt := types.OCILayer
		if d.MediaType == store.PackageLayerZstdMediaType {
			mt = types.OCILayerZStd
		}
		open := func() (io.ReadCloser, error) {
			rc, _, err := st.Blob(d.Digest)
			return rc, err
		}
		l, err := tarball.LayerFromOpener(open, tarball.WithMediaType(mt))
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	return resourcesImage(layers)
}

// filesImage is an image of a few generated files under resources/.
func filesImage(files map[string][]byte) (v1.Image, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: resourcesSubPath + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
		return nil, err
	}
	for name, data := range files {
		hdr := &tar.Header{Name: resourcesSubPath + "/" + name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	raw := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	return resourcesImage([]v1.Layer{l})
}

func resourcesImage(layers []v1.Layer) (v1.Image, error) {
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	// The config first: AppendLayers then adds each layer's diff_id to it.
	base, err := mutate.ConfigFile(base, &v1.ConfigFile{OS: "linux", Architecture: runtime.GOARCH, RootFS: v1.RootFS{Type: "layers"}})
	if err != nil {
		return nil, err
	}
	return mutate.AppendLayers(base, layers...)
}
