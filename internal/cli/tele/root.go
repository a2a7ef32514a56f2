// Package tele is the tele command line: each file is one verb that turns
// flags into options and makes one library call.
package tele

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/cli/output"
)

// globals are the flags every tele command takes.
type globals struct {
	stateDir string
	debug    bool
	stdout   io.Writer
	stderr   io.Writer
}

func (g *globals) logger() *slog.Logger { return output.NewLogger("tele", g.stderr, g.debug) }

// Main runs tele with the process's arguments and returns its exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := NewCommand(os.Stdout, os.Stderr)
	if err := cmd.ExecuteContext(ctx); err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "tele: interrupted; nothing was written")
			return output.ExitInterrupted
		}
		fmt.Fprintln(os.Stderr, "tele: error:", err)
		return output.ExitCode(err)
	}
	return output.ExitOK
}

// NewCommand builds the tele command tree writing to the given streams.
func NewCommand(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "tele",
		Short:         "Build cluster images: an application and the Kubernetes runtime in one tarball",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.stateDir, "state-dir", defaultStateDir(),
		"tele's state directory: local image store and imported base images ($GRAVITY_STATE_DIR)")
	root.PersistentFlags().BoolVar(&g.debug, "debug", false, "log debug messages to stderr")
	root.AddCommand(newBuildCommand(g), newLsCommand(g), output.VersionCommand(stdout),
		newInspectCommand(g), newImageCommand(g))
	return root
}

func defaultStateDir() string {
	if dir := os.Getenv("GRAVITY_STATE_DIR"); dir != "" {
		return dir
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".gravity"
	}
	return filepath.Join(home, ".gravity")
}

// baseImageDirs is where base images built by `make` are found: a
// base-images directory beside the tele binary, unless overridden.
func baseImageDirs(flag []string) []string {
	if len(flag) > 0 {
		return flag
	}
	if env := os.Getenv("TELE_BASE_IMAGE_DIR"); env != "" {
		return filepath.SplitList(env)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return []string{filepath.Join(filepath.Dir(exe), "base-images")}
}
