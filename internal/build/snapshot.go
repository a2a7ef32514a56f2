package build

import (
	"context"
	"fmt"
	"os"
	"sort"

	"github.com/opengravity/gravity/internal/clusterimage"
	"github.com/opengravity/gravity/internal/version"
)

// snapshot settles the list of packages and images the cluster image holds:
// one entry per name, in a stable order.
func snapshot(_ context.Context, st *buildState) error {
	seen := map[string]clusterimage.Entry{}
	for _, e := range st.entries {
		if prev, ok := seen[e.Ref]; ok && prev.Descriptor.Digest != e.Descriptor.Digest {
			return fmt.Errorf("two different images would be named %s in the cluster (%s and %s)",
				e.Ref, prev.Descriptor.Digest, e.Descriptor.Digest)
		}
		seen[e.Ref] = e
	}
	st.entries = st.entries[:0]
	for _, e := range seen {
		st.entries = append(st.entries, e)
	}
	sort.Slice(st.entries, func(i, j int) bool {
		a, b := st.entries[i], st.entries[j]
		if a.Kind != b.Kind {
			return a.Kind > b.Kind // packages before images
		}
		return a.Ref < b.Ref
	})
	return nil
}

// save writes the cluster image (temp file + rename inside Write).
func save(ctx context.Context, st *buildState) error {
	raw, err := os.ReadFile(st.app.Path)
	if err != nil {
		return err
	}
	m := st.app.Manifest
	spec := clusterimage.Spec{
		Name: m.Metadata.Name, Version: m.Metadata.ResourceVersion,
		BaseImage:     st.base.Name + ":" + st.base.Version,
		CreatedBy:     "tele " + version.Version,
		AppManifest:   raw,
		GravityBinary: st.gravity,
		TshBinary:     st.tsh,
		Entries:       st.entries,
		Source:        st.store,
		Delta:         st.delta,
	}
	if err := clusterimage.Write(ctx, st.output, spec, clusterimage.WriteOptions{Overwrite: st.opts.Overwrite, Progress: st.opts.SaveProgress}); err != nil {
		return err
	}
	if st.delta != nil {
		img, err := clusterimage.Open(st.output)
		if err != nil {
			return err
		}
		var n int64
		for _, b := range img.Meta.Omitted() {
			n += b.Size
		}
		st.printf("delta against %s: %d blobs (%.1f MB) left out, the cluster has them", st.delta.From, len(img.Meta.Omitted()), float64(n)/1e6)
	}
	return nil
}
