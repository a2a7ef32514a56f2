package gravity

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/cli/output"
	"github.com/opengravity/gravity/internal/install"
	"github.com/opengravity/gravity/internal/join"
	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/upgrade"
)

func planCommand(stdout, stderr io.Writer) *cobra.Command {
	o := install.Options{StateDir: config.DefaultStateDir, LogFile: install.DefaultLogFile}
	var format output.Format
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show the plan of this node's last operation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := install.LoadPlan(cmd.Context(), o.StateDir)
			if err != nil {
				return err
			}
			return output.Print(stdout, format, p, func(w io.Writer) error { return printPlan(w, p) })
		},
	}
	cmd.PersistentFlags().StringVar(&o.StateDir, "state-dir", o.StateDir, "the node's state directory")
	output.AddFlag(cmd, &format)
	run := func(f func(cmd *cobra.Command, o install.Options) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			if err := requireRoot("plan " + cmd.Name()); err != nil {
				return err
			}
			o.Out, o.Log = stdout, output.NewLogger("gravity", stderr, false)
			return f(cmd, o)
		}
	}
	var phase string
	var force bool
	execute := &cobra.Command{Use: "execute --phase ID", Short: "Run one phase (or every phase of a group)", Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, o install.Options) error {
			if join.Pending(o.StateDir) {
				return join.Execute(cmd.Context(), joinOptions(o), phase, force)
			}
			if upgrade.Pending(o.StateDir) {
				return upgrade.Execute(cmd.Context(), upgradeOptions(o), phase, force)
			}
			return install.Execute(cmd.Context(), o, phase, force)
		})}
	execute.Flags().StringVar(&phase, "phase", "", "the phase id, e.g. /masters/10.0.0.1/runtime")
	execute.Flags().BoolVar(&force, "force", false, "run it even if completed or its requirements are not")
	_ = execute.MarkFlagRequired("phase")
	resume := &cobra.Command{Use: "resume", Short: "Run the rest of the plan, retrying the failed phase", Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, o install.Options) error {
			if join.Pending(o.StateDir) {
				return join.Resume(cmd.Context(), joinOptions(o))
			}
			if upgrade.Pending(o.StateDir) {
				return upgrade.Resume(cmd.Context(), upgradeOptions(o))
			}
			return install.Resume(cmd.Context(), o)
		})}
	var rbPhase string
	var rbForce bool
	rollback := &cobra.Command{Use: "rollback [--phase ID]", Short: "Undo one phase, or without --phase the whole operation", Args: cobra.NoArgs,
		RunE: run(func(cmd *cobra.Command, o install.Options) error {
			if join.Pending(o.StateDir) {
				return join.Rollback(cmd.Context(), joinOptions(o), rbPhase, rbForce)
			}
			if upgrade.Pending(o.StateDir) {
				return upgrade.Rollback(cmd.Context(), upgradeOptions(o), rbPhase, rbForce)
			}
			return install.Rollback(cmd.Context(), o, rbPhase, rbForce)
		})}
	rollback.Flags().StringVar(&rbPhase, "phase", "", "the phase (or group) to roll back; empty: the whole operation")
	rollback.Flags().BoolVar(&rbForce, "force", false, "roll back even while later phases still hold its changes")
	cmd.AddCommand(execute, resume, rollback)
	return cmd
}

// joinOptions are the plan commands' options for a pending join: the
// operation's own record says where the cluster is.
func joinOptions(o install.Options) join.Options {
	return join.Options{StateDir: o.StateDir, Out: o.Out, Log: o.Log}
}

// upgradeOptions are the plan commands' options for an upgrade this node
// drives.
func upgradeOptions(o install.Options) upgrade.Options {
	return upgrade.Options{StateDir: o.StateDir, Out: o.Out, Log: o.Log}
}

func printPlan(w io.Writer, p *plan.Plan) error {
	fmt.Fprintf(w, "Operation %s (%s) of cluster %s: %s\n\n", p.OperationID, p.OperationType, p.ClusterName, p.State())
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Phase\tDescription\tState\tNode\tStarted\tDuration")
	fmt.Fprintln(tw, "-----\t-----------\t-----\t----\t-------\t--------")
	var walk func(ps []*plan.Phase, depth int)
	walk = func(ps []*plan.Phase, depth int) {
		for _, ph := range ps {
			start, finish := ph.Span()
			fmt.Fprintf(tw, "%s%s %s\t%s\t%s\t%s\t%s\t%s\n", strings.Repeat("  ", depth), stateMark(ph.StateOf()), ph.ID,
				ph.Description, ph.StateOf(), orDash(ph.Node), clock(start), duration(start, finish))
			walk(ph.Phases, depth+1)
		}
	}
	walk(p.Phases, 0)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, ph := range p.Leaves() {
		if ph.Error != "" {
			fmt.Fprintf(w, "\nPhase %s failed: %s\n", ph.ID, ph.Error)
		}
	}
	return nil
}

func stateMark(s plan.State) string {
	switch s {
	case plan.Completed:
		return "✔"
	case plan.InProgress:
		return "→"
	case plan.Failed:
		return "×"
	case plan.RolledBack:
		return "⤺"
	}
	return "*"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("Mon Jan _2 15:04:05")
}

func duration(start, finish time.Time) string {
	if start.IsZero() || finish.IsZero() {
		return "-"
	}
	return finish.Sub(start).Round(time.Millisecond).String()
}
