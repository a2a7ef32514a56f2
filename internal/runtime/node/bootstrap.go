package node

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/runtime/config"
)

// Bootstrap creates the PKI of a new cluster on its first master n: a
// fresh CA set, saved under the node's PKI directory (refusing to replace
// an existing one), then everything IssueNode writes. root prefixes every
// path as in config.Write: "/" on a node, a scratch directory in tests.
// clusterName goes into the CAs' common names; empty means n.ClusterName.
func Bootstrap(root string, n config.Node, clusterName string) error {
	n, err := n.WithDefaults()
	if err != nil {
		return err
	}
	if !n.IsMaster() {
		return errors.New("bootstrap: only a master creates the cluster CA")
	}
	if clusterName == "" {
		clusterName = n.ClusterName
	}
	cs, err := pki.NewCASet(clusterName, pki.DefaultCAValidity, time.Now())
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := cs.Save(filepath.Join(root, n.Paths().PKI), false); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return issue(root, cs, n, false)
}

// IssueNode writes node n's certificates (issued from cs) and its
// components' kubeconfigs under root. A master also gets the CA set it
// needs to serve: the CAs with their keys (the controller manager signs
// with the cluster CA) and the service account key; a worker gets only the
// CA certificates its components verify peers against.
func IssueNode(root string, cs *pki.CASet, n config.Node) error {
	return issue(root, cs, n, true)
}

// issue writes n's files; saveCAs is false when Bootstrap just saved them.
func issue(root string, cs *pki.CASet, n config.Node, saveCAs bool) error {
	n, err := n.WithDefaults()
	if err != nil {
		return err
	}
	if cs == nil || cs.Cluster == nil {
		return errors.New("issue node certificates: no CA set")
	}
	dir := filepath.Join(root, n.Paths().PKI)
	certs, err := pki.NodeCerts(cs, n.PKINode())
	if err != nil {
		return fmt.Errorf("issue node certificates: %w", err)
	}
	if err := pki.WriteDir(dir, certs); err != nil {
		return fmt.Errorf("issue node certificates: %w", err)
	}
	if saveCAs {
		if err := writeCAs(root, n, cs); err != nil {
			return err
		}
	}
	kcs, err := config.Kubeconfigs(n, cs.Cluster.Cert, certs)
	if err != nil {
		return fmt.Errorf("issue node certificates: %w", err)
	}
	if err := config.Write(root, kcs, pki.KeyMode); err != nil {
		return fmt.Errorf("issue node certificates: %w", err)
	}
	return nil
}

// writeCAs saves the whole set on a master (replacing the files, which hold
// the same CAs on a re-issue) and only the cluster CA certificate on a
// worker: kubelet and containerd verify their peers against it, and
// nothing on a worker talks to etcd or the front proxy.
func writeCAs(root string, n config.Node, cs *pki.CASet) error {
	p := n.Paths()
	if n.IsMaster() {
		if err := cs.Save(filepath.Join(root, p.PKI), true); err != nil {
			return fmt.Errorf("issue node certificates: %w", err)
		}
		return nil
	}
	ca := map[string][]byte{p.Cert(pki.ClusterCAName): cs.Cluster.CertPEM()}
	if err := config.Write(root, ca, pki.CertMode); err != nil {
		return fmt.Errorf("issue node certificates: %w", err)
	}
	return nil
}
