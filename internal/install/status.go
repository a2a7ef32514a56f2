package install

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/runtime/node"
)

// localNode is this node's runtime config, as install wrote it.
// LocalNode is this node's runtime config, as the install or join wrote it.
func LocalNode(stateDir string) (config.Node, error) { return localNode(stateDir) }

func localNode(stateDir string) (config.Node, error) {
	path := filepath.Join(stateDir, "config", "node.yaml")
	n, err := node.LoadNode(path)
	if errors.Is(err, fs.ErrNotExist) {
		return n, fmt.Errorf("no cluster is installed on this node (%s not found)", path)
	}
	if err != nil {
		return n, err
	}
	return n.WithDefaults()
}

// Status reads the cluster's status through this node's admin
// credentials, probing the endpoints it lists.
func Status(ctx context.Context, stateDir string) (cluster.Status, error) {
	n, err := localNode(stateDir)
	if err != nil {
		return cluster.Status{}, err
	}
	if !n.IsMaster() {
		var masters []string
		for _, m := range n.MasterIPs {
			masters = append(masters, m.String())
		}
		return cluster.Status{}, fmt.Errorf("node %s is a worker: it holds no credentials to read the cluster's state "+
			"(the status shows the join token, which admits masters); run `gravity status` on a master: %s",
			n.Name, strings.Join(masters, ", "))
	}
	kubeconfig := AdminKubeconfig(n)
	c, err := Clients(kubeconfig)
	if err != nil {
		return cluster.Status{}, err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return cluster.Status{}, err
	}
	apiClient, err := rest.HTTPClientFor(rc)
	if err != nil {
		return cluster.Status{}, err
	}
	apiClient.Timeout = 5 * time.Second
	var fingerprint string
	probes := cluster.Probes{API: cluster.HTTPProbe(apiClient, "/readyz"), Node: cluster.KubeletProbe}
	if reg, err := newRegistryClient(n, pki.RegistryClient); err == nil {
		probes.Registry = cluster.HTTPProbe(&http.Client{Transport: reg.tr, Timeout: 5 * time.Second}, "/v2/")
	}
	if web, err := pki.ClientTLS(n.Paths().Cert(pki.Admin), n.Paths().Key(pki.Admin), n.Paths().Cert(pki.ClusterCAName)); err == nil {
		probes.Web = webProbe(&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: web}}, &fingerprint)
	}
	st, err := cluster.ReadStatus(ctx, c, probes)
	if err != nil {
		return st, err
	}
	st.WebCertificate = fingerprint
	certs, err := pki.Expiries(n.Paths().PKI)
	if err != nil {
		return st, fmt.Errorf("reading this node's certificates: %w", err)
	}
	st.ExpiringCertificates = pki.Expiring(certs, time.Now(), pki.RenewWithin)
	return st, nil
}

// webProbe checks a cluster management URL over TLS verified by the
// cluster CA, and keeps the fingerprint of the first certificate seen.
func webProbe(client *http.Client, fingerprint *string) func(ctx context.Context, url string) error {
	return cluster.HTTPProbeSeeing(client, "/healthz", func(resp *http.Response) {
		if *fingerprint == "" && resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
			*fingerprint = pki.Fingerprint(resp.TLS.PeerCertificates[0])
		}
	})
}

// ClusterPlan reads the newest operation's plan from the cluster, for
// nodes that did not run it.
func ClusterPlan(ctx context.Context, stateDir string) (*plan.Plan, error) {
	n, err := localNode(stateDir)
	if err != nil {
		return nil, err
	}
	c, err := Clients(AdminKubeconfig(n))
	if err != nil {
		return nil, err
	}
	ops, err := cluster.Operations(ctx, c)
	if err != nil {
		return nil, err
	}
	if len(ops) == 0 {
		return nil, fmt.Errorf("%w in the cluster", plan.ErrNoPlan)
	}
	return ops[0], nil
}
