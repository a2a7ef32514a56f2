package join

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/clusterservice"
	"github.com/opengravity/gravity/internal/install"
	"github.com/opengravity/gravity/internal/jointoken"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/runtime/node"
)

// localNode is this host's node config.
func localNode(stateDir string) (config.Node, error) {
	n, err := node.LoadNode(filepath.Join(stateDir, "config", "node.yaml"))
	if err != nil {
		return n, err
	}
	return n.WithDefaults()
}

// clientTLS is a client of the cluster service with key pair pair of n.
func clientTLS(n config.Node, pair string) (*tls.Config, error) {
	p := n.Paths()
	caPEM, err := os.ReadFile(p.Cert(pki.ClusterCAName))
	if err != nil {
		return nil, err
	}
	pool, err := jointoken.Pool(caPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.Cert(pki.ClusterCAName), err)
	}
	kp, err := tls.LoadX509KeyPair(p.Cert(pair), p.Key(pair))
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}, nil
}

// remove asks the first master in addrs that answers to remove node name.
func remove(ctx context.Context, addrs []string, tlsCfg *tls.Config, name string, force bool) (*plan.Plan, error) {
	var errs []string
	for _, a := range addrs {
		cctx, cancel := context.WithTimeout(ctx, clusterservice.RemoveTimeout)
		p, err := clusterservice.Remove(cctx, clusterservice.ServiceAddr(a), tlsCfg, name, force)
		cancel()
		if err == nil {
			return p, nil
		}
		errs = append(errs, err.Error())
		if !isUnreachable(err) {
			break // the cluster answered: its refusal stands
		}
	}
	return nil, errors.New(strings.Join(errs, "; "))
}

func isUnreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused")
}

// Leave takes this node out of the cluster gracefully: the cluster drains
// it and forgets it (its Node, its pod subnet and, for a master, its etcd
// member) in a shrink operation, asked with the node's own certificate (a
// master's admin one, sent to another master); then everything gravity
// put on the host goes, as with `gravity leave --force`.
func Leave(ctx context.Context, stateDir string, out io.Writer) error {
	n, err := localNode(stateDir)
	if err != nil {
		return fmt.Errorf("%w (`gravity leave --force` cleans up a node the cluster is gone from)", err)
	}
	pair, addrs := pki.KubeletClient, []string{}
	for _, m := range n.MasterIPs {
		if !m.Equal(n.IP) {
			addrs = append(addrs, m.String())
		}
	}
	if n.IsMaster() {
		pair = pki.Admin
		if len(addrs) == 0 {
			return errors.New("this is the cluster's only master: `gravity leave --force` removes the cluster from it")
		}
	}
	tlsCfg, err := clientTLS(n, pair)
	if err != nil {
		return err
	}
	pr := printer{out}
	pr.say("Asking the cluster to remove node %s", n.Name)
	if _, err := remove(ctx, addrs, tlsCfg, n.Name, false); err != nil {
		return fmt.Errorf("the cluster did not remove this node (%v); nothing was changed here. "+
			"`gravity leave --force` cleans this node up without the cluster", err)
	}
	pr.say("Node %s has been removed from the cluster", n.Name)
	return install.Leave(ctx, stateDir, out)
}

// RemoveOptions are `gravity remove`'s.
type RemoveOptions struct {
	StateDir string
	Node     string // name, address or hostname
	Force    bool
	Confirm  bool
	In       io.Reader
	Out      io.Writer
}

// Remove takes another node out of the cluster from this master: drained
// and forgotten, and out of etcd if a master. It asks first unless
// Confirm. The removed node is not cleaned (it may be dead): `gravity
// leave --force` there does that.
func Remove(ctx context.Context, o RemoveOptions) error {
	n, err := localNode(o.StateDir)
	if err != nil {
		return err
	}
	if !n.IsMaster() {
		return errors.New("gravity remove runs on a master")
	}
	c, err := install.Clients(install.AdminKubeconfig(n))
	if err != nil {
		return err
	}
	name, desc, joining, err := findTarget(ctx, c, o.Node)
	if err != nil {
		return err
	}
	if name == n.Name {
		return errors.New("this is the node gravity runs on: `gravity leave` takes it out")
	}
	what := "removing node " + desc
	if joining {
		what = "rolling back the join of node " + desc
	}
	if !o.Confirm {
		fmt.Fprintf(o.Out, "Please confirm %s [y/N]: ", what)
		line, _ := bufio.NewReader(o.In).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			return errors.New("not confirmed: nothing was changed")
		}
	}
	tlsCfg, err := clientTLS(n, pki.Admin)
	if err != nil {
		return err
	}
	pr := printer{o.Out}
	pr.say("%s%s", strings.ToUpper(what[:1]), what[1:])
	p, err := remove(ctx, []string{n.IP.String()}, tlsCfg, name, o.Force)
	if err != nil {
		return err
	}
	for _, ph := range p.Leaves() {
		pr.say("%s: %s", ph.Description, ph.State)
	}
	if joining {
		pr.say("The join of node %s has been rolled back (operation %s); `gravity leave --force` cleans that host if it comes back", desc, p.OperationID)
		return nil
	}
	pr.say("Node %s has been removed (operation %s)", desc, p.OperationID)
	return nil
}

// findTarget is the node `gravity remove` names: a node of the cluster, or
// else one whose join is still open (its host may have died half way).
func findTarget(ctx context.Context, c cluster.Clients, what string) (name, desc string, joining bool, err error) {
	target, err := findNode(ctx, c, what)
	if err == nil {
		return target.Name, fmt.Sprintf("%s (%s)", target.Labels[cluster.LabelHostname], target.Name), false, nil
	}
	ops, oerr := cluster.Operations(ctx, c)
	if oerr != nil {
		return "", "", false, errors.Join(err, oerr)
	}
	for _, op := range ops {
		st := op.State()
		if op.OperationType != clusterservice.OperationExpand || st == plan.Completed || st == plan.RolledBack {
			continue
		}
		ip, host := op.Data[clusterservice.DataNode], op.Data[clusterservice.DataHostname]
		if ip == what || host == what {
			return ip, fmt.Sprintf("%s (%s)", host, ip), true, nil
		}
	}
	return "", "", false, err
}

func findNode(ctx context.Context, c cluster.Clients, what string) (*corev1.Node, error) {
	nodes, err := c.Kube.Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var names []string
	for i, nd := range nodes.Items {
		if nd.Name == what || nd.Labels[cluster.LabelHostname] == what {
			return &nodes.Items[i], nil
		}
		for _, a := range nd.Status.Addresses {
			if a.Address == what {
				return &nodes.Items[i], nil
			}
		}
		names = append(names, fmt.Sprintf("%s (%s)", nd.Labels[cluster.LabelHostname], nd.Name))
	}
	return nil, fmt.Errorf("no node %q in the cluster (it has %s)", what, strings.Join(names, ", "))
}
