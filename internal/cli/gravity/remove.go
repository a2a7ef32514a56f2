package gravity

import (
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/join"
	"github.com/opengravity/gravity/internal/runtime/config"
)

func removeCommand(stdout io.Writer) *cobra.Command {
	o := join.RemoveOptions{StateDir: config.DefaultStateDir}
	cmd := &cobra.Command{
		Use:   "remove <name|address|hostname> [--force] [--confirm]",
		Short: "Take another node out of the cluster, from a master",
		Long: `Take a node out of the cluster: drain it, remove it from etcd if it is a
master, delete it and free its pod subnet, as a shrink operation the cluster
records. A master whose removal would leave etcd without a healthy majority is
refused without --force; --force also removes a node that does not answer.
The removed node itself is not cleaned: ` + "`gravity leave --force`" + ` there does it.

A node still joining is named the same way: when its host died half way, so that
no ` + "`gravity join`" + ` there will resume or undo the join, --force rolls the join back
from here (its Node, pod subnet and etcd member go) and the cluster is active again.`,
		Example: "  sudo gravity remove node-3 --confirm",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireRoot("remove"); err != nil {
				return err
			}
			o.Node, o.In, o.Out = args[0], os.Stdin, stdout
			return join.Remove(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Force, "force", false, "remove a node that does not answer, or a master etcd cannot spare")
	f.BoolVar(&o.Confirm, "confirm", false, "do not ask for confirmation")
	f.StringVar(&o.StateDir, "state-dir", o.StateDir, "this node's state directory")
	return cmd
}
