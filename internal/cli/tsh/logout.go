package tsh

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/tsh"
)

func logoutCommand(g *globals, stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "End the session: remove the certificates and the kubeconfig context",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := tsh.Logout(cmd.Context(), g.home, g.kubeconfig)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "Logged out %s from %s.\n", p.User, p.Proxy)
			return nil
		},
	}
}
