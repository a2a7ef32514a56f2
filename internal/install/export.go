package install

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/store"
)

// exportStep pushes every container image of the cluster image into the
// node's registry (registry.local:5000), over mTLS with the registry's
// client certificate.
type exportStep struct{ nodeStep }

func (s exportStep) Execute(ctx context.Context) error {
	st, err := store.Open(s.cfg.PackagesDir())
	if err != nil {
		return err
	}
	return pushImages(ctx, s.rn, st, func(e store.Entry) bool { return true }, s.out)
}

// pushImages pushes the images of store st that want picks into master
// n's registry with this node's pusher certificate (only masters hold it).
func pushImages(ctx context.Context, n config.Node, st *store.Store, want func(store.Entry) bool, out io.Writer) error {
	reg, err := newRegistryClient(n, pki.RegistryPusher)
	if err != nil {
		return err
	}
	entries, err := st.Entries()
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Kind != store.KindImage || !want(e) {
			continue
		}
		if err := reg.pushIndexOrImage(ctx, st, e); err != nil {
			return err
		}
		fmt.Fprintf(out, "pushed %s\n", e.Ref)
	}
	return nil
}

// PushImages pushes the images refs of store st into master n's
// registry, as install's export does.
func PushImages(ctx context.Context, n config.Node, st *store.Store, refs []string, out io.Writer) error {
	return pushImages(ctx, n, st, func(e store.Entry) bool { return slices.Contains(refs, e.Ref) }, out)
}

// RegistryHealthy checks that master n's registry answers over mTLS.
func RegistryHealthy(ctx context.Context, n config.Node) error { return registryHealthy(ctx, n) }

// Rollback empties the registry's storage: the runtime's rollback removes
// the directory itself.
func (s exportStep) Rollback(context.Context) error {
	return os.RemoveAll(s.rn.Paths().RegistryStorage + "/docker")
}

// registryClient talks to one node's registry as registry.local:5000.
type registryClient struct {
	host string // "10.0.0.5:5000"
	tr   http.RoundTripper
}

// newRegistryClient reaches node n's registry as pair: pki.RegistryPusher
// to push (masters only hold it), pki.RegistryClient to read.
func newRegistryClient(n config.Node, pair string) (*registryClient, error) {
	p := n.Paths()
	cfg, err := pki.ClientTLS(p.Cert(pair), p.Key(pair), p.Cert(pki.ClusterCAName))
	if err != nil {
		return nil, fmt.Errorf("registry client: %w", err)
	}
	cfg.ServerName = pki.RegistryHost
	tr := &http.Transport{TLSClientConfig: cfg}
	return &registryClient{host: net.JoinHostPort(n.IP.String(), "5000"), tr: tr}, nil
}

// ref maps an in-cluster name (registry.local:5000/x:y) to this node's
// registry address.
func (r *registryClient) ref(inCluster string) (name.Reference, error) {
	rest, ok := strings.CutPrefix(inCluster, config.RegistryAddr+"/")
	if !ok {
		return nil, fmt.Errorf("image %s is not named for the cluster registry", inCluster)
	}
	return name.ParseReference(r.host + "/" + rest)
}

func (r *registryClient) pushIndexOrImage(ctx context.Context, st *store.Store, e store.Entry) error {
	ref, err := r.ref(e.Ref)
	if err != nil {
		return err
	}
	// A multi-platform image is pushed as this node's platform only: the
	// cluster runs on one architecture.
	img, _, err := st.Image(e.Ref, v1.Platform{OS: "linux", Architecture: runtime.GOARCH})
	if err != nil {
		return err
	}
	return wrapPush(e.Ref, remote.Write(ref, img, remote.WithTransport(r.tr), remote.WithContext(ctx)))
}

func (r *registryClient) push(ctx context.Context, inCluster string, img v1.Image) error {
	ref, err := r.ref(inCluster)
	if err != nil {
		return err
	}
	return wrapPush(inCluster, remote.Write(ref, img, remote.WithTransport(r.tr), remote.WithContext(ctx)))
}

func wrapPush(ref string, err error) error {
	if err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}
