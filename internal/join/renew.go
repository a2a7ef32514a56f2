package join

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/opengravity/gravity/internal/clusterservice"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/runtime/node"
)

// RenewWorker is `gravity certs renew` on a worker: fresh keys made here,
// certificates for them from the cluster service (asked with the node's
// current client certificate, which must not have expired), written with
// the kubeconfigs that carry them; then the components that read them only
// at start are restarted.
func RenewWorker(ctx context.Context, stateDir string, out io.Writer) error {
	n, err := localNode(stateDir)
	if err != nil {
		return err
	}
	if n.IsMaster() {
		return errors.New("renew: a master renews from its own CA set")
	}
	tlsCfg, err := clientTLS(n, pki.KubeletClient)
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	names, err := pki.NodeCertNames(n.PKINode())
	if err != nil {
		return err
	}
	keys, err := pki.NewNodeRequests(names)
	if err != nil {
		return err
	}
	var resp *clusterservice.CertResponse
	var errs []error
	for _, m := range n.MasterIPs {
		if resp, err = clusterservice.RenewNode(ctx, clusterservice.ServiceAddr(m.String()), tlsCfg, n.Name, keys.CSRs); err == nil {
			break
		}
		errs = append(errs, err)
	}
	if resp == nil {
		return fmt.Errorf("renew: no master renewed this node's certificates: %w", errors.Join(errs...))
	}
	pairs, err := keys.Complete(resp.Certs)
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	ca, err := pki.ParseCertificatePEM(resp.CA)
	if err != nil {
		return fmt.Errorf("renew: cluster CA: %w", err)
	}
	if err := pki.WriteDir(n.Paths().PKI, pairs); err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	kcs, err := config.Kubeconfigs(n, ca, pairs)
	if err != nil {
		return err
	}
	if err := config.Write("/", kcs, pki.KeyMode); err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	fmt.Fprintf(out, "Renewed the certificates of %s through the cluster service\n", n.Name)
	return node.RestartOnNewCertificates(ctx, n, out)
}
