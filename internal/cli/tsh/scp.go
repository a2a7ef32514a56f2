package tsh

import (
	"fmt"
	"io"
	"os/user"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/tsh"
)

func scpCommand(g *globals, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "scp <src> <dst>",
		Short: "Copy a file to or from a node: one side is [login@]node:path",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := tsh.Current(g.home)
			if err != nil {
				return err
			}
			login := ""
			if u, err := user.Current(); err == nil {
				login = u.Username
			}
			return p.Copy(cmd.Context(), login, args[0], args[1],
				func(format string, a ...any) { fmt.Fprintf(stderr, "tsh: warning: "+format+"\n", a...) })
		},
	}
}
