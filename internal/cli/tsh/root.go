// Package tsh is the tsh command line, run on a build box or a laptop:
// log in to a cluster's proxy, list its nodes, open sessions on them,
// replay recorded ones, and reach Kubernetes with plain kubectl. Each file
// is one verb: flags in, one library call (internal/tsh) out.
package tsh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/cli/output"
	"github.com/opengravity/gravity/internal/tsh"
)

// Main runs tsh with the process's arguments and returns its exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := NewCommand(os.Stdin, os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		var exit *tsh.ExitError
		if errors.As(err, &exit) {
			return exit.Status
		}
		fmt.Fprintln(os.Stderr, "tsh: error:", err)
		return output.ExitCode(err)
	}
	return output.ExitOK
}

// globals are the flags every verb takes.
type globals struct {
	insecure   bool
	home       string
	kubeconfig string
}

// NewCommand builds the tsh command tree on the given streams.
func NewCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "tsh",
		Short:         "Reach a gravity cluster's nodes and Kubernetes with short-lived certificates",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if g.home != "" {
				return nil
			}
			h, err := tsh.Home()
			g.home = h
			return err
		},
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.BoolVar(&g.insecure, "insecure", false, "do not verify the proxy's certificate (the first login to a cluster whose CA this machine does not know)")
	pf.StringVar(&g.kubeconfig, "kubeconfig", "", "the kubeconfig login writes its context into (default: $KUBECONFIG or ~/.kube/config)")
	root.AddCommand(output.VersionCommand(stdout), loginCommand(g, stdin, stdout, stderr), logoutCommand(g, stdout), statusCommand(g, stdout),
		lsCommand(g, stdout), sshCommand(g, stdin, stdout, stderr), scpCommand(g, stderr), playCommand(g, stdout), recordingsCommand(g, stdout))
	return root
}
