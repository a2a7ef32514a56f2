package gravity

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/cli/output"
	"github.com/opengravity/gravity/internal/install"
	"github.com/opengravity/gravity/internal/join"
	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/upgrade"
)

// rollbackCommand is Gravity's `gravity rollback`: the operation this node
// runs (a join, an upgrade or the install), rolled back whole, after
// showing what will be undone.
func rollbackCommand(stdout, stderr io.Writer) *cobra.Command {
	o := install.Options{StateDir: config.DefaultStateDir, LogFile: install.DefaultLogFile}
	var dryRun, confirm bool
	cmd := &cobra.Command{
		Use:   "rollback [--dry-run] [--confirm]",
		Short: "Roll back the operation in progress on this node",
		Long: `Roll back the operation this node runs (an upgrade it drives, its join, or
the install), every phase that ran in reverse order, as ` + "`gravity plan rollback`" + `
does. It lists the phases first and asks to proceed unless --confirm;
--dry-run lists them only.`,
		Example: "  sudo gravity rollback --confirm",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireRoot("rollback"); err != nil {
				return err
			}
			o.Out, o.Log = stdout, output.NewLogger("gravity", stderr, false)
			p, err := install.LoadPlan(cmd.Context(), o.StateDir)
			if err != nil {
				return err
			}
			if !join.Pending(o.StateDir) && !upgrade.Pending(o.StateDir) && p.State() == plan.Completed {
				return fmt.Errorf("operation %s (%s) has completed: nothing to roll back", p.OperationID, p.OperationType)
			}
			todo := p.RollbackAll()
			if len(todo) == 0 {
				return fmt.Errorf("operation %s (%s) has nothing to roll back", p.OperationID, p.OperationType)
			}
			fmt.Fprintf(stdout, "Rolling back operation %s (%s) of cluster %s:\n", p.OperationID, p.OperationType, p.ClusterName)
			for _, ph := range todo {
				where := "locally"
				if ph.Node != "" {
					where = "on node " + ph.Node
				}
				fmt.Fprintf(stdout, "  %s %s\t%s (%s)\n", stateMark(ph.StateOf()), ph.ID, ph.Description, where)
			}
			if dryRun {
				return nil
			}
			if !confirm {
				fmt.Fprint(stdout, "Proceed? (yes/no): ")
				line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
					return errors.New("not confirmed: nothing was changed")
				}
			}
			switch {
			case join.Pending(o.StateDir):
				return join.Rollback(cmd.Context(), joinOptions(o), "", false)
			case upgrade.Pending(o.StateDir):
				return upgrade.Rollback(cmd.Context(), upgradeOptions(o), "", false)
			}
			return install.Rollback(cmd.Context(), o, "", false)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&dryRun, "dry-run", false, "list what would be rolled back, change nothing")
	f.BoolVar(&confirm, "confirm", false, "do not ask for confirmation")
	f.StringVar(&o.StateDir, "state-dir", o.StateDir, "this node's state directory")
	return cmd
}
