package gravity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/nodeagent"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/runtime/node"
	"github.com/opengravity/gravity/internal/upgrade"
	"github.com/opengravity/gravity/internal/version"
)

// agentCommand runs the node agent on every node (a runtime component: the
// supervisor starts it with the node's paths).
func agentCommand() *cobra.Command {
	var addr, healthAddr, cert, key, ca, kubeconfig, nodeName, stateDir, runDir string
	cmd := &cobra.Command{
		Use:    node.AgentCommand,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			tlsCfg, err := pki.ServerTLS(cert, key, ca)
			if err != nil {
				return fmt.Errorf("node agent: %w", err)
			}
			kc, err := clientFrom(kubeconfig)
			if err != nil {
				return err
			}
			c := cluster.Clients{Kube: kc, Dynamic: kc.Dynamic()}
			a, err := nodeagent.New(nodeagent.Config{Addr: addr, HealthAddr: healthAddr, Node: nodeName,
				TLS: tlsCfg,
				Operation: func(ctx context.Context, id string) (*plan.Plan, error) {
					return cluster.OperationStore{Clients: c, ID: id}.Load(ctx)
				},
				Executors: upgrade.NodeExecutors(stateDir),
				Status: func() (nodeagent.Status, error) {
					st, err := node.ReadStatus(runDir)
					if err != nil && !errors.Is(err, node.ErrNotRunning) {
						return nodeagent.Status{}, err
					}
					return nodeagent.Status{Version: version.Version, Runtime: st.State, BinDir: st.BinDir}, nil
				},
				WorkDir: filepath.Join(stateDir, "local", "agent"), Log: log})
			if err != nil {
				return err
			}
			return a.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "", "host:port to serve on")
	f.StringVar(&healthAddr, "health-addr", "", "host:port to serve /healthz on, in plain HTTP")
	f.StringVar(&cert, "cert", "", "serving certificate")
	f.StringVar(&key, "key", "", "serving key")
	f.StringVar(&ca, "ca", "", "the cluster CA, which clients' certificates must chain to")
	f.StringVar(&kubeconfig, "kubeconfig", "", "the node's credentials, to read operations with")
	f.StringVar(&nodeName, "node", "", "this node's name")
	f.StringVar(&stateDir, "state-dir", "", "the node's state directory")
	f.StringVar(&runDir, "run-dir", config.DefaultRunDir, "the node's run directory, where the runtime publishes its status")
	for _, name := range []string{"addr", "cert", "key", "ca", "kubeconfig", "node", "state-dir"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}
