package tsh

import (
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/access"
	"github.com/opengravity/gravity/internal/cli/output"
	"github.com/opengravity/gravity/internal/clusterapi"
	"github.com/opengravity/gravity/internal/tsh"
)

func lsCommand(g *globals, stdout io.Writer) *cobra.Command {
	var format output.Format
	cmd := &cobra.Command{
		Use:   "ls [label=value,...]",
		Short: "List the cluster's nodes (those matching the labels)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := tsh.Current(g.home)
			if err != nil {
				return err
			}
			nodes, err := p.Nodes(cmd.Context())
			if err != nil {
				return err
			}
			if len(args) == 1 {
				if nodes, err = tsh.Match(nodes, args[0]); err != nil {
					return err
				}
			}
			return output.Print(stdout, format, nodes, func(w io.Writer) error { return nodeTable(w, nodes) })
		},
	}
	output.AddFlag(cmd, &format)
	return cmd
}

func nodeTable(w io.Writer, nodes []clusterapi.NodeInfo) error {
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	fmt.Fprintln(tw, "Node Name\tAddress\tLabels")
	fmt.Fprintln(tw, "---------\t-------\t------")
	for _, n := range nodes {
		keys := make([]string, 0, len(n.Labels))
		for k := range n.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		labels := make([]string, len(keys))
		for i, k := range keys {
			labels[i] = k + "=" + n.Labels[k]
		}
		name := n.Hostname
		if name == "" {
			name = n.Name
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, net.JoinHostPort(n.Address, strconv.Itoa(access.NodeSSHPort)), strings.Join(labels, ","))
	}
	return tw.Flush()
}
