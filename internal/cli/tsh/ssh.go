package tsh

import (
	"fmt"
	"io"
	"os/user"
	"strings"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/tsh"
)

func sshCommand(g *globals, stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	var login string
	var tty bool
	cmd := &cobra.Command{
		Use:   "ssh [login@]<node | label=value,...> [command...]",
		Short: "Open a shell on a node, or run a command on every node that matches",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := tsh.Current(g.home)
			if err != nil {
				return err
			}
			target := args[0]
			if l, t, ok := strings.Cut(target, "@"); ok {
				login, target = l, t
			}
			if login == "" {
				if u, err := user.Current(); err == nil {
					login = u.Username
				}
			}
			return p.SSH(cmd.Context(), tsh.SSHOptions{Login: login, Target: target, Command: args[1:], TTY: tty,
				Stdin: stdin, Stdout: stdout, Stderr: stderr,
				Warn: func(format string, a ...any) { fmt.Fprintf(stderr, "tsh: warning: "+format+"\n", a...) }})
		},
	}
	cmd.Flags().StringVarP(&login, "login", "l", "", "the login on the node (default: yours here)")
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "ask for a terminal on the node even without one here (the session is then recorded)")
	cmd.Flags().SetInterspersed(false) // flags after the node are the command's
	return cmd
}
