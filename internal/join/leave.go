package join

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opengravity/gravity/internal/clusterservice"
	"github.com/opengravity/gravity/internal/install"
	"github.com/opengravity/gravity/internal/jointoken"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/runtime/node"
)

// Leave takes this worker out of the cluster gracefully: the cluster
// service drains it and forgets it (its Node, its pod subnet), asked with
// the node's own certificate; then everything gravity put on the host goes,
// as with `gravity leave --force`.
func Leave(ctx context.Context, stateDir string, out io.Writer) error {
	n, err := node.LoadNode(filepath.Join(stateDir, "config", "node.yaml"))
	if err != nil {
		return fmt.Errorf("%w (`gravity leave --force` cleans up a node the cluster is gone from)", err)
	}
	if n, err = n.WithDefaults(); err != nil {
		return err
	}
	if n.IsMaster() {
		return errors.New("a master cannot leave gracefully with this version (its etcd membership would have to shrink): " +
			"`gravity leave --force` removes the cluster from this node without asking it")
	}
	p := n.Paths()
	caPEM, err := os.ReadFile(p.Cert(pki.ClusterCAName))
	if err != nil {
		return err
	}
	pool, err := jointoken.Pool(caPEM)
	if err != nil {
		return fmt.Errorf("%s: %w", p.Cert(pki.ClusterCAName), err)
	}
	pair, err := tls.LoadX509KeyPair(p.Cert(pki.KubeletClient), p.Key(pki.KubeletClient))
	if err != nil {
		return err
	}
	tlsCfg := &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	pr := printer{out}
	pr.say("Asking the cluster to remove node %s", n.Name)
	var errs []string
	left := false
	for _, m := range n.MasterIPs {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err := clusterservice.Leave(cctx, clusterservice.ServiceAddr(m.String()), tlsCfg, n.Name)
		cancel()
		if err == nil {
			left = true
			break
		}
		errs = append(errs, err.Error())
	}
	if !left {
		return fmt.Errorf("the cluster did not remove this node (%s); nothing was changed here. "+
			"`gravity leave --force` cleans this node up without the cluster", strings.Join(errs, "; "))
	}
	pr.say("Node %s has been removed from the cluster", n.Name)
	return install.Leave(ctx, stateDir, out)
}
