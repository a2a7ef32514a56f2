package install

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/runtime/node"
)

// Leave removes the cluster from this node completely, as `gravity leave
// --force` did in Gravity: the runtime and everything it left, the
// binaries and kubeconfig install put on the host, the state and logs.
// It does not ask the cluster first (a graceful leave, which shrinks the
// cluster, comes with `gravity join`).
func Leave(ctx context.Context, stateDir string, out io.Writer) error {
	rn, err := localNode(stateDir)
	if err != nil {
		// No node config: bootstrap never ran, so neither did the runtime;
		// only the operation's own files can be there.
		if _, serr := os.Stat(stateDir); os.IsNotExist(serr) {
			fmt.Fprintln(out, "no cluster on this node: nothing to remove")
			return nil
		}
		if err := errors.Join(os.RemoveAll(stateDir), removeMissingOK(DefaultLogFile)); err != nil {
			return fmt.Errorf("leave: %w", err)
		}
		fmt.Fprintln(out, "removed the unfinished install's state")
		return nil
	}
	s := nodeStep{rn: rn, out: out}
	errs := []error{
		node.Reset(ctx, rn, out),
		pullStep{s}.Rollback(ctx),
		removeRuntimeVersions(rn.BinDir),
		bootstrapStep{s}.Rollback(ctx),
		os.RemoveAll(stateDir),
		os.RemoveAll(rn.LogDir),
		removeMissingOK(DefaultLogFile),
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	fmt.Fprintln(out, "this node has left the cluster: everything gravity installed on it is removed")
	return nil
}

// removeRuntimeVersions removes every runtime version installed beside
// binDir's (an upgrade keeps the previous one), and their directory.
func removeRuntimeVersions(binDir string) error {
	root := filepath.Dir(filepath.Dir(binDir))
	if root != config.RuntimeRoot {
		return nil // a custom layout: only its own version was removed
	}
	return os.RemoveAll(root)
}

func removeMissingOK(path string) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
