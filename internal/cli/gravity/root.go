// Package gravity is the gravity command line, run on cluster nodes. Each
// file is one verb: flags in, one library call out.
package gravity

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/cli/output"
)

// Main runs gravity with the process's arguments and returns its exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := NewCommand(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "gravity: error:", err)
		return output.ExitCode(err)
	}
	return output.ExitOK
}

// NewCommand builds the gravity command tree writing to the given streams.
func NewCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "gravity",
		Short:         "Install and operate Kubernetes clusters from cluster images",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(output.VersionCommand(stdout), runtimeCommand(stdout, stderr), installCommand(stdout, stderr),
		planCommand(stdout, stderr), statusCommand(stdout), joinCommand(stdout, stderr), leaveCommand(stdout), removeCommand(stdout), certsCommand(stdout),
		uploadCommand(stdout, stderr), upgradeCommand(stdout, stderr), rollbackCommand(stdout, stderr),
		usersCommand(stdout), resourceCommand(stdout), auditCommand(stdout))
	return root
}
