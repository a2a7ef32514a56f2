package gravity

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/opengravity/gravity/internal/access"
	"github.com/opengravity/gravity/internal/accessproxy"
	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/clusterapi"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/runtime/node"
	"github.com/opengravity/gravity/internal/sshnode"
)

// accessProxyCommand runs the access proxy on a master (a runtime
// component). It acts with the cluster service's identity, which may
// impersonate users: its key is on masters only.
func accessProxyCommand() *cobra.Command {
	var nodeConfig, healthAddr string
	cmd := &cobra.Command{
		Use:    node.AccessProxyCommand,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			self, err := node.LoadNode(nodeConfig)
			if err != nil {
				return err
			}
			p := self.Paths()
			pair, err := tls.LoadX509KeyPair(p.Cert(pki.ClusterService), p.Key(pki.ClusterService))
			if err != nil {
				return err
			}
			kubeconfig := p.Kubeconfig(config.KubeconfigClusterService)
			rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return err
			}
			kc, err := clientFrom(kubeconfig, func(rc *rest.Config) { rc.QPS = -1 })
			if err != nil {
				return err
			}
			proxy, err := accessproxy.New(accessproxy.Config{IP: self.IP, Hostname: self.Hostname, ClusterName: self.ClusterName,
				Clients: cluster.Clients{Kube: kc, Dynamic: kc.Dynamic()}, Kube: rc, ServingCert: pair, Log: log})
			if err != nil {
				return err
			}
			return proxy.Run(cmd.Context(), healthWhenReady(cmd.Context(), healthAddr, log))
		},
	}
	cmd.Flags().StringVar(&nodeConfig, "node-config", "", "this master's node config")
	cmd.Flags().StringVar(&healthAddr, "health-addr", "", "host:port to serve /healthz on, in plain HTTP, once listening")
	_ = cmd.MarkFlagRequired("node-config")
	return cmd
}

// sshNodeCommand runs the node's SSH service (a runtime component on
// every node).
func sshNodeCommand() *cobra.Command {
	var nodeConfig, healthAddr string
	cmd := &cobra.Command{
		Use:    node.SSHCommand,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			self, err := node.LoadNode(nodeConfig)
			if err != nil {
				return err
			}
			p := self.Paths()
			// The node asks for its host certificate as its kubelet.
			rc, err := clientcmd.BuildConfigFromFlags("", p.Kubeconfig(config.KubeconfigKubelet))
			if err != nil {
				return err
			}
			tlsCfg, err := rest.TLSConfigFor(rc)
			if err != nil {
				return err
			}
			var apis []string
			for _, m := range self.MasterIPs {
				apis = append(apis, net.JoinHostPort(m.String(), strconv.Itoa(clusterapi.Port)))
			}
			svc, err := sshnode.New(sshnode.Config{Addr: net.JoinHostPort(self.IP.String(), strconv.Itoa(access.NodeSSHPort)),
				Dir: filepath.Join(p.PKI, "ssh"), Hostname: self.Hostname, APIs: apis, ClientTLS: tlsCfg, Log: log})
			if err != nil {
				return err
			}
			return svc.Run(cmd.Context(), healthWhenReady(cmd.Context(), healthAddr, log))
		},
	}
	cmd.Flags().StringVar(&nodeConfig, "node-config", "", "this node's config")
	cmd.Flags().StringVar(&healthAddr, "health-addr", "", "host:port to serve /healthz on, in plain HTTP, once listening")
	_ = cmd.MarkFlagRequired("node-config")
	return cmd
}

// healthWhenReady is a component's ready callback: from then on /healthz
// answers on addr (loopback, for the supervisor's probe), until ctx ends.
func healthWhenReady(ctx context.Context, addr string, log *slog.Logger) func() {
	return func() {
		if addr == "" {
			return
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			log.Error("health endpoint", "addr", addr, "error", err.Error())
			return
		}
		srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "ok\n")
		})}
		go func() {
			<-ctx.Done()
			srv.Close()
		}()
		go func() { _ = srv.Serve(ln) }()
	}
}
