package gravity

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/cli/output"
	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/install"
	"github.com/opengravity/gravity/internal/join"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/version"
)

func statusCommand(stdout io.Writer) *cobra.Command {
	stateDir := config.DefaultStateDir
	var (
		format    output.Format
		tokenOnly bool
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster's name, state, application, nodes, endpoints and recent operations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := install.Status(cmd.Context(), stateDir)
			if err != nil {
				return err
			}
			if tokenOnly {
				// For scripts: `gravity join … --token=$(gravity status --token)`.
				_, err := fmt.Fprintln(stdout, st.Token)
				return err
			}
			return output.Print(stdout, format, st, func(w io.Writer) error { return printClusterStatus(w, st) })
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", stateDir, "the node's state directory")
	cmd.Flags().BoolVar(&tokenOnly, "token", false, "print the join token alone")
	output.AddFlag(cmd, &format)
	return cmd
}

func printClusterStatus(w io.Writer, st cluster.Status) error {
	tw := tabwriter.NewWriter(w, 0, 8, 1, '\t', 0)
	fmt.Fprintf(tw, "Cluster name:\t%s\n", st.Info.Name)
	fmt.Fprintf(tw, "Cluster status:\t%s\n", st.Info.State)
	fmt.Fprintf(tw, "Application:\t%s, version %s\n", st.Info.App, st.Info.AppVersion)
	fmt.Fprintf(tw, "Gravity version:\t%s\n", version.Version)
	fmt.Fprintf(tw, "Join token:\t%s\n", st.Token)
	if !st.TokenExpires.IsZero() {
		when := "expired"
		if left := time.Until(st.TokenExpires); left > 0 {
			when = "in " + humanDuration(left)
		}
		fmt.Fprintf(tw, "Join token expires:\t%s (%s)\n", st.TokenExpires.Local().Format(time.RFC1123), when)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	printOperations(w, st.Operations)
	fmt.Fprintln(w, "Cluster endpoints:")
	for _, e := range st.Endpoints {
		fmt.Fprintf(w, "    * %s:\n", e.Name)
		for _, u := range e.URLs {
			fmt.Fprintf(w, "        - %s\n", u)
		}
	}
	if st.WebCertificate != "" {
		fmt.Fprintf(w, "    * Web certificate fingerprint:\n        - %s\n", st.WebCertificate)
	}
	fmt.Fprintln(w, "Cluster nodes:")
	printNodes(w, "Masters", st.Nodes, true)
	printNodes(w, "Nodes", st.Nodes, false)
	printExpiring(w, st.ExpiringCertificates, time.Now())
	return nil
}

// printExpiring warns of this node's certificates that expire soon.
func printExpiring(w io.Writer, certs []pki.Expiry, now time.Time) {
	if len(certs) == 0 {
		return
	}
	fmt.Fprintln(w, "Certificates:")
	for _, c := range certs {
		left := c.NotAfter.Sub(now)
		when := fmt.Sprintf("expires in %s", humanDuration(left))
		if left <= 0 {
			when = "has expired"
		}
		fmt.Fprintf(w, "    [!] %s (%s) %s, on %s\n", c.Name, c.Subject, when, c.NotAfter.Local().Format(time.RFC1123))
	}
	fmt.Fprintln(w, "    Renew them on this node with `gravity certs renew`.")
}

func humanDuration(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
	return d.Round(time.Minute).String()
}

// printNodes lists the masters or the other nodes as Gravity did:
// hostname, address and profile, then health.
func printNodes(w io.Writer, title string, nodes []cluster.NodeStatus, masters bool) {
	header := false
	for _, n := range nodes {
		if n.Master != masters {
			continue
		}
		if !header {
			fmt.Fprintf(w, "    %s:\n", title)
			header = true
		}
		fmt.Fprintf(w, "        * %s / %s / %s\n", orDash(n.Hostname), n.Address, orDash(n.Profile))
		fmt.Fprintf(w, "            Status:\t%s\n", n.Status)
		for _, p := range n.Problems {
			fmt.Fprintf(w, "            [×]\t%s\n", p)
		}
	}
}

func printOperations(w io.Writer, ops []cluster.OperationBrief) {
	if len(ops) == 0 {
		return
	}
	fmt.Fprintln(w, "Recent operations:")
	for _, op := range ops[:min(len(ops), 5)] {
		what := op.Type
		if op.Description != "" {
			what = op.Description
		}
		fmt.Fprintf(w, "    * %s (%s): %s\n", what, op.ID, op.State)
		if op.State == string(plan.InProgress) || op.State == string(plan.Failed) {
			fmt.Fprintf(w, "      Progress:\t%d of %d phases (`gravity plan` shows them)\n", op.Done, op.Phases)
		}
		fmt.Fprintf(w, "      Started:\t%s (%s ago)\n", op.Created.Local().Format(time.RFC1123), time.Since(op.Created).Round(time.Second))
		if !op.Finished.IsZero() {
			fmt.Fprintf(w, "      Completed:\t%s (took %s)\n", op.Finished.Local().Format(time.RFC1123), op.Finished.Sub(op.Created).Round(time.Millisecond))
		}
	}
}

func leaveCommand(stdout io.Writer) *cobra.Command {
	stateDir := config.DefaultStateDir
	var force bool
	cmd := &cobra.Command{
		Use:   "leave [--force]",
		Short: "Take this node out of the cluster and remove the cluster from it",
		Long: `Take this node out of the cluster: the cluster drains it and forgets it (its
Node and its pod subnet), then everything gravity put on the node goes: the
runtime, its containers, mounts, network state and data, the binaries and
kubeconfig on the host, the state and log directories. With --force the
cluster is not asked (it may be gone, or this is its last master).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireRoot("leave"); err != nil {
				return err
			}
			if !force {
				return join.Leave(cmd.Context(), stateDir, stdout)
			}
			return install.Leave(cmd.Context(), stateDir, stdout)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "remove everything locally without asking the cluster")
	cmd.Flags().StringVar(&stateDir, "state-dir", stateDir, "the node's state directory")
	return cmd
}
