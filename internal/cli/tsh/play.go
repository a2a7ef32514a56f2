package tsh

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/cli/output"
	"github.com/opengravity/gravity/internal/tsh"
)

func playCommand(g *globals, stdout io.Writer) *cobra.Command {
	var maxPause time.Duration
	cmd := &cobra.Command{
		Use:   "play <session>",
		Short: "Replay a recorded session (tsh recordings lists them)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := tsh.Current(g.home)
			if err != nil {
				return err
			}
			return p.Play(cmd.Context(), args[0], stdout, maxPause)
		},
	}
	cmd.Flags().DurationVar(&maxPause, "max-pause", time.Second, "cut longer pauses of the session to this")
	return cmd
}

func recordingsCommand(g *globals, stdout io.Writer) *cobra.Command {
	var format output.Format
	cmd := &cobra.Command{
		Use:   "recordings",
		Short: "List the recorded sessions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := tsh.Current(g.home)
			if err != nil {
				return err
			}
			recs, err := p.Recordings(cmd.Context())
			if err != nil {
				return err
			}
			return output.Print(stdout, format, recs, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "Session\tUser\tLogin\tNode\tStarted\tDuration")
				for _, r := range recs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.User, r.Login, r.Node, r.Start.Local().Format(time.RFC3339), r.End.Sub(r.Start).Round(time.Second))
				}
				return tw.Flush()
			})
		},
	}
	output.AddFlag(cmd, &format)
	return cmd
}
