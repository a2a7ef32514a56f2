package gravity

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/cli/output"
	"github.com/opengravity/gravity/internal/install"
	"github.com/opengravity/gravity/internal/join"
	"github.com/opengravity/gravity/internal/runtime/config"
)

func certsCommand(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "certs", Short: "List and renew this node's certificates"}
	cmd.AddCommand(certsListCommand(stdout), certsRenewCommand(stdout))
	return cmd
}

func certsListCommand(stdout io.Writer) *cobra.Command {
	stateDir := config.DefaultStateDir
	var format output.Format
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List this node's certificates and when each expires, soonest first",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			certs, err := install.Certificates(stateDir)
			if err != nil {
				return err
			}
			return output.Print(stdout, format, certs, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "Certificate\tSubject\tExpires")
				for _, c := range certs {
					fmt.Fprintf(tw, "%s\t%s\t%s (in %s)\n", c.Name, c.Subject, c.NotAfter.Local().Format(time.RFC1123),
						humanDuration(time.Until(c.NotAfter)))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", stateDir, "the node's state directory")
	output.AddFlag(cmd, &format)
	return cmd
}

func certsRenewCommand(stdout io.Writer) *cobra.Command {
	stateDir := config.DefaultStateDir
	cmd := &cobra.Command{
		Use:   "renew",
		Short: "Issue this node's certificates anew and restart its components onto them, one at a time",
		Long: `Issue every certificate and kubeconfig of this node anew (the same names,
valid for another year): on a master from its CA set; on a worker, which holds
no CA key, for new keys made here, signed by a master's cluster service that
the worker's current certificate authenticates to. Then restart, one at a time
and each ready before the next, the components that read their certificates
only at start. Pods keep running; on a single master the API is away for the seconds
kube-apiserver takes to restart. gravity status warns 30 days before any
certificate of the node expires.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireRoot("certs renew"); err != nil {
				return err
			}
			if install.IsWorker(stateDir) {
				return join.RenewWorker(cmd.Context(), stateDir, stdout)
			}
			return install.RenewCerts(cmd.Context(), stateDir, stdout)
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", stateDir, "the node's state directory")
	return cmd
}
