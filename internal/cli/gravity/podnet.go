package gravity

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/opengravity/gravity/internal/kube"
	"github.com/opengravity/gravity/internal/runtime/csrapprove"
	"github.com/opengravity/gravity/internal/runtime/node"
	"github.com/opengravity/gravity/internal/runtime/podnet"
)

// csrApproverCommand is a master's approver of kubelets' serving
// certificate requests, which the runtime supervises (node.CSRApprover).
// Not for people.
func csrApproverCommand() *cobra.Command {
	var kubeconfig, health string
	cmd := &cobra.Command{
		Use:    node.CSRApproverCommand,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := clientFrom(kubeconfig)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			stop, err := serveHealth(health)
			if err != nil {
				return err
			}
			defer stop()
			return csrapprove.Approver{Client: client, Log: log}.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "the approver's credentials")
	cmd.Flags().StringVar(&health, "health-addr", "", "loopback host:port for /healthz")
	_ = cmd.MarkFlagRequired("kubeconfig")
	return cmd
}

// serveHealth answers /healthz on addr while the component runs.
func serveHealth(addr string) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("health endpoint: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}

// podNetworkCommand is the node's pod network agent, which the runtime
// supervises (node.PodNetwork). Not for people.
func podNetworkCommand() *cobra.Command {
	var kubeconfig, nodeKubeconfig, nodeName, podCIDR, clusterCIDR, health, nodeConfig string
	cmd := &cobra.Command{
		Use:    node.PodNetworkCommand,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			own, err1 := netip.ParsePrefix(podCIDR)
			cluster, err2 := netip.ParsePrefix(clusterCIDR)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("--pod-cidr %q, --cluster-cidr %q: want IPv4 networks", podCIDR, clusterCIDR)
			}
			reader, err := clientFrom(kubeconfig)
			if err != nil {
				return err
			}
			self, err := clientFrom(nodeKubeconfig)
			if err != nil {
				return err
			}
			table, err := podnet.NewTable()
			if err != nil {
				return err
			}
			defer table.Close()
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			o := podnet.Options{NodeName: nodeName, PodCIDR: own, ClusterCIDR: cluster, HealthAddr: health, Log: log}
			if nodeConfig != "" {
				// A runtime started from a config elsewhere (by hand) does
				// not follow the masters; its routes are the agent's job.
				n, err := node.LoadNode(nodeConfig)
				if err == nil {
					n, err = n.WithDefaults()
				}
				if err != nil {
					log.Warn("registry endpoints will not follow the masters", "error", err.Error())
				} else {
					o.OnMasters = node.FollowMasters(n)
				}
			}
			agent, err := podnet.NewAgent(o, podnet.Clients{Reader: reader, Node: self}, table)
			if err != nil {
				return err
			}
			return agent.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "credentials that may list and watch nodes (kube-proxy's)")
	f.StringVar(&nodeKubeconfig, "node-kubeconfig", "", "credentials that may patch this node (kubelet's)")
	f.StringVar(&nodeName, "node", "", "this node's name")
	f.StringVar(&nodeConfig, "node-config", "", "this node's config, to keep its registry endpoints on the cluster's masters")
	f.StringVar(&podCIDR, "pod-cidr", "", "this node's pod subnet")
	f.StringVar(&clusterCIDR, "cluster-cidr", "", "the cluster's pod network")
	f.StringVar(&health, "health-addr", "", "loopback host:port for /healthz")
	for _, name := range []string{"kubeconfig", "node-kubeconfig", "node", "pod-cidr", "cluster-cidr"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// clientFrom is a client with a runtime component's kubeconfig.
func clientFrom(kubeconfig string, tune ...func(*rest.Config)) (*kube.Client, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	for _, f := range tune {
		f(rc)
	}
	c, err := kube.New(rc)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	return c, nil
}
