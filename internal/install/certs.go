package install

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/runtime/node"
)

// RenewCerts is `gravity certs renew`: this master's certificates issued
// anew and its components restarted onto them (node.RenewCertificates).
// root's kubeconfig, a copy of the admin's that install made, follows the
// admin's as long as it is still that copy.
func RenewCerts(ctx context.Context, stateDir string, out io.Writer) error {
	n, err := localNode(stateDir)
	if err != nil {
		return err
	}
	admin := n.Paths().Kubeconfig(config.KubeconfigAdmin)
	before, err := os.ReadFile(admin)
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	if err := node.RenewCertificates(ctx, "/", n, out); err != nil {
		return err
	}
	cur, err := os.ReadFile(rootKubeconfig)
	if err != nil || !bytes.Equal(cur, before) {
		return nil // root has a kubeconfig of its own: not ours to replace
	}
	after, err := os.ReadFile(admin)
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	return plan.WriteFileAtomic(rootKubeconfig, after, 0o600)
}

// IsWorker says whether this node is a worker (false where no node is).
func IsWorker(stateDir string) bool {
	n, err := localNode(stateDir)
	return err == nil && !n.IsMaster()
}

// Certificates lists this node's certificates, soonest to expire first.
func Certificates(stateDir string) ([]pki.Expiry, error) {
	n, err := localNode(stateDir)
	if err != nil {
		return nil, err
	}
	return pki.Expiries(n.Paths().PKI)
}
