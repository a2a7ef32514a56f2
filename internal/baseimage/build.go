package baseimage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opengravity/gravity/internal/clusterimage"
	"github.com/opengravity/gravity/internal/store"
)

// BuildOptions describe a base image for Build.
type BuildOptions struct {
	Name, Version string
	Kubernetes    string // the Kubernetes release the runtime carries
	Gravity       string // the gravity binary
	Tsh           string // the tsh binary, passed on to every cluster image
	Output        string
	// Runtime, when set, adds the runtime package and the system images;
	// without it the base image carries only the gravity binary.
	Runtime *Runtime
}

// Build writes a base image: a cluster image whose manifest is the runtime's
// own, so tele can import it like any other image.
func Build(ctx context.Context, o BuildOptions) error {
	manifest := fmt.Sprintf(`apiVersion: cluster.gravitational.io/v2
kind: Cluster
metadata:
  name: %s
  resourceVersion: %s
  description: %q
`, o.Name, o.Version, description(o))
	work, err := os.MkdirTemp(filepath.Dir(o.Output), ".mkbase-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	s, err := store.Open(filepath.Join(work, "store"))
	if err != nil {
		return err
	}
	var entries []clusterimage.Entry
	if o.Runtime != nil {
		if entries, err = runtimeEntries(ctx, s, o, work); err != nil {
			return err
		}
	}
	spec := clusterimage.Spec{
		Name: o.Name, Version: o.Version,
		Description:   description(o),
		Kubernetes:    o.Kubernetes,
		CreatedBy:     "gravity " + o.Version,
		AppManifest:   []byte(manifest),
		GravityBinary: o.Gravity,
		TshBinary:     o.Tsh,
		Entries:       entries,
		Source:        s,
	}
	return clusterimage.Write(ctx, o.Output, spec, clusterimage.WriteOptions{Overwrite: true})
}

// description tells the truth about what the base image carries: until the
// runtime packages are in it, it says so.
func description(o BuildOptions) string {
	if o.Runtime == nil {
		return fmt.Sprintf("Base cluster image for Kubernetes %s (gravity binary only; runtime not packaged yet)", o.Kubernetes)
	}
	return "Base cluster image with Kubernetes " + o.Kubernetes
}
