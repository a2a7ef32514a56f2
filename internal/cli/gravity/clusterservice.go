package gravity

import (
	"crypto/tls"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/clusterservice"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/runtime/node"
	"github.com/opengravity/gravity/internal/store"
	"github.com/opengravity/gravity/internal/version"
)

// clusterServiceCommand runs the cluster service on a master (a runtime
// component: the supervisor starts it with the node's paths).
func clusterServiceCommand() *cobra.Command {
	var addr, webAddr, cert, key, pkiDir, kubeconfig, nodeConfig, packages string
	cmd := &cobra.Command{
		Use:    node.ClusterServiceCommand,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			self, err := node.LoadNode(nodeConfig)
			if err != nil {
				return err
			}
			cas, err := pki.LoadCASet(pkiDir)
			if err != nil {
				return err
			}
			pair, err := tls.LoadX509KeyPair(cert, key)
			if err != nil {
				return err
			}
			// Every API call the service answers makes two or three of its
			// own: client-go's default of 5 a second queued 50 callers for
			// seconds each, 200 a second still capped the service at 70
			// answers a second. No client-side limit: the API server's
			// priority and fairness protects it.
			kc, err := clientFrom(kubeconfig, func(rc *rest.Config) { rc.QPS = -1 })
			if err != nil {
				return err
			}
			var st *store.Store
			if _, err := os.Stat(packages); err == nil {
				if st, err = store.Open(packages); err != nil {
					return err
				}
			}
			svc, err := clusterservice.New(clusterservice.Config{Addr: addr, WebAddr: webAddr,
				TLS: &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: cas.Cluster.Pool(),
					ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12},
				CAs: cas, Clients: cluster.Clients{Kube: kc, Dynamic: kc.Dynamic()}, Self: self, Packages: st,
				Version: version.Version, Log: log})
			if err != nil {
				return err
			}
			return svc.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "", "host:port to serve the cluster API on")
	f.StringVar(&webAddr, "web-addr", "", "host:port to serve the same API at the cluster management URL")
	f.StringVar(&cert, "cert", "", "serving certificate")
	f.StringVar(&key, "key", "", "serving key")
	f.StringVar(&pkiDir, "pki-dir", "", "the cluster's CA set")
	f.StringVar(&kubeconfig, "kubeconfig", "", "the service's credentials")
	f.StringVar(&nodeConfig, "node-config", "", "this master's node config")
	f.StringVar(&packages, "packages", "", "this master's package store")
	for _, name := range []string{"addr", "cert", "key", "pki-dir", "kubeconfig", "node-config"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}
