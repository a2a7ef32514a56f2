package gravity

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/cli/output"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/upgrade"
)

func upgradeCommand(stdout, stderr io.Writer) *cobra.Command {
	o := upgrade.Options{StateDir: config.DefaultStateDir}
	var rollbackLast bool
	cmd := &cobra.Command{
		Use:   "upgrade [--manual] [--no-wait] [--force] | --rollback-last",
		Short: "Upgrade the cluster to the uploaded cluster image this gravity came with",
		Long: `Upgrade the cluster's application to the version of the unpacked cluster image
this gravity binary belongs to (run ./upload first; ./upgrade does both). Run
it on a master. The cluster must be healthy (--force: nodes may be degraded),
run an older version of the same application, and have no other operation
unfinished. When the image is built on a newer base image, the runtime is
upgraded too: one node at a time, masters first, each drained (disruption
budgets respected), switched to the new runtime and restarted, uncordoned.

The upgrade is an operation with a plan kept in the cluster, run by a process
of its own (log: ` + upgrade.LogFile + `), so closing the terminal does not stop
it; this command follows it until it ends unless --no-wait. --manual creates
the plan only: run it with ` + "`gravity plan execute --phase ID`" + ` or
` + "`gravity plan resume`" + `. ` + "`gravity plan rollback`" + ` returns the cluster to the old version.
--rollback-last undoes the last upgrade after it completed, on the master that
ran it, while the old version's packages are still in the cluster.`,
		Example: "  sudo ./upgrade\n  sudo ./gravity upgrade --manual",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireRoot("upgrade"); err != nil {
				return err
			}
			o.Out, o.Log = stdout, output.NewLogger("gravity", stderr, false)
			if rollbackLast {
				return upgrade.RollbackLast(cmd.Context(), o)
			}
			return upgrade.Start(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Manual, "manual", false, "create the operation's plan and stop")
	f.BoolVar(&o.NoWait, "no-wait", false, "start the operation and return")
	f.BoolVar(&o.Force, "force", false, "upgrade even if some nodes are degraded")
	f.BoolVar(&rollbackLast, "rollback-last", false, "roll back the last completed upgrade")
	f.StringVar(&o.ImageDir, "image-dir", "", "the unpacked cluster image (default: this binary's directory)")
	f.StringVar(&o.StateDir, "state-dir", o.StateDir, "this node's state directory")
	return cmd
}

func uploadCommand(stdout, stderr io.Writer) *cobra.Command {
	o := upgrade.Options{StateDir: config.DefaultStateDir}
	cmd := &cobra.Command{
		Use:   "upload",
		Short: "Import the cluster image this gravity came with into the cluster",
		Long: `Import the unpacked cluster image this gravity binary belongs to into the
cluster, from a master: its packages into the cluster's package store and its
container images into the registry (registry.local:5000) of every master. The
image is verified first; nothing is copied from a corrupt or truncated one, or
when the disk cannot hold it.`,
		Example: "  sudo ./upload",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireRoot("upload"); err != nil {
				return err
			}
			o.Out, o.Log = stdout, output.NewLogger("gravity", stderr, false)
			return upgrade.Upload(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ImageDir, "image-dir", "", "the unpacked cluster image (default: this binary's directory)")
	f.StringVar(&o.StateDir, "state-dir", o.StateDir, "this node's state directory")
	return cmd
}
