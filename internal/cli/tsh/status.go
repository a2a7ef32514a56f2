package tsh

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/tsh"
)

func statusCommand(g *globals, stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the current login",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			p, err := tsh.Current(g.home)
			if err != nil {
				return err
			}
			printProfile(stdout, p)
			return nil
		},
	}
}
