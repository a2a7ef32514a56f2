package gravity

import (
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/opengravity/gravity/internal/kube"
	"github.com/opengravity/gravity/internal/runtime/apilb"
	"github.com/opengravity/gravity/internal/runtime/node"
)

// apiLBCommand runs a worker's load balancer in front of the masters' API
// servers (a runtime component).
func apiLBCommand() *cobra.Command {
	var listen, kubeconfig string
	var backends []string
	cmd := &cobra.Command{
		Use:    node.APILBCommand,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			lb := apilb.New(listen, backends, log)
			if kubeconfig != "" {
				// Through the balancer itself: the cluster lists the
				// masters that joined since this node's config was made.
				rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
				if err != nil {
					return err
				}
				lb.Check = apilb.ReadyzCheck(rc)
				client := func() (dynamic.Interface, error) {
					kc, err := kube.New(apilb.Uncached(rc))
					if err != nil {
						return nil, err
					}
					return kc.Dynamic(), nil
				}
				go lb.Refresh(cmd.Context(), client, 5*time.Second)
			}
			return lb.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "", "host:port to listen on (loopback)")
	f.StringArrayVar(&backends, "backend", nil, "an API server's host:port (repeatable)")
	f.StringVar(&kubeconfig, "kubeconfig", "", "credentials to list the API servers with (kube-proxy's)")
	_ = cmd.MarkFlagRequired("listen")
	return cmd
}
