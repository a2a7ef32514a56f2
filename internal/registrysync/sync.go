// Package registrysync copies every image of one cluster registry into
// another: a master that joins gets all the images the cluster runs before
// it counts as ready, so that registry.local answers the same on every
// master. Images are copied by digest (an index with all its platforms),
// blobs the destination has already are not sent again.
package registrysync

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Sync copies every tag of every repository of the registry at from
// (host:port) to the one at to, through tr (which carries a client
// certificate that may pull from one and push to the other). It returns
// how many tags it copied.
func Sync(ctx context.Context, from, to string, tr http.RoundTripper) (int, error) {
	src, err := name.NewRegistry(from)
	if err != nil {
		return 0, err
	}
	opts := []remote.Option{remote.WithTransport(tr), remote.WithContext(ctx)}
	repos, err := remote.Catalog(ctx, src, opts...)
	if err != nil {
		return 0, fmt.Errorf("listing the images of %s: %w", from, err)
	}
	n := 0
	for _, repo := range repos {
		r, err := name.NewRepository(from + "/" + repo)
		if err != nil {
			return n, err
		}
		tags, err := remote.List(r, opts...)
		if err != nil {
			return n, fmt.Errorf("listing the tags of %s: %w", r, err)
		}
		for _, tag := range tags {
			if err := copyTag(r.Tag(tag), to, opts); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

func copyTag(src name.Tag, to string, opts []remote.Option) error {
	dst, err := name.NewTag(to + "/" + src.RepositoryStr() + ":" + src.TagStr())
	if err != nil {
		return err
	}
	desc, err := remote.Get(src, opts...)
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return err
		}
		err = remote.WriteIndex(dst, idx, opts...)
		if err != nil {
			return fmt.Errorf("copying %s to %s: %w", src, to, err)
		}
		return nil
	}
	img, err := desc.Image()
	if err != nil {
		return err
	}
	if err := remote.Write(dst, img, opts...); err != nil {
		return fmt.Errorf("copying %s to %s: %w", src, to, err)
	}
	return nil
}
