package gravity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/cli/output"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/runtime/node"
	"github.com/opengravity/gravity/internal/runtime/supervisor"
)

func runtimeCommand(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "runtime", Short: "Run the node's Kubernetes runtime (what Planet was)"}
	cmd.AddCommand(runtimeStartCommand(stdout, stderr), runtimeStopCommand(stdout), runtimeRestartCommand(stdout), runtimeStatusCommand(stdout),
		kubeletExecCommand(), podNetworkCommand(), registryGateCommand(), csrApproverCommand(), clusterServiceCommand(), apiLBCommand(), agentCommand(),
		accessProxyCommand(), sshNodeCommand())
	return cmd
}

func runtimeStartCommand(stdout, stderr io.Writer) *cobra.Command {
	var path string
	var foreground bool
	cmd := &cobra.Command{
		Use:   "start --config node.yaml",
		Short: "Start the node runtime: a systemd unit under systemd, else a daemon (or in the foreground)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := node.LoadNode(path)
			if err != nil {
				return err
			}
			if foreground {
				log := slog.New(slog.NewTextHandler(stderr, nil))
				return node.Run(cmd.Context(), n, log)
			}
			return startRuntime(cmd.Context(), stdout, path, n)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "node config file (YAML)")
	cmd.Flags().BoolVar(&foreground, "foreground", false,
		"run in the foreground until SIGTERM instead of as a daemon or systemd unit")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// startRuntime starts the runtime of config path as a systemd unit under
// systemd, else as a daemon.
func startRuntime(ctx context.Context, stdout io.Writer, path string, n config.Node) error {
	if svc := runtimeService(); svc.Systemd() {
		return startUnit(ctx, stdout, svc, path, n)
	}
	return daemonize(ctx, stdout, path, n)
}

// runtimeRestartCommand stops the node runtime and starts it again from
// its config, with whatever binaries it names now: how an upgrade switches
// a node to another runtime version. Pods keep running across it
// (containerd's shims outlive containerd). The node agent runs it detached,
// --after letting the agent answer its caller before the runtime (and the
// agent with it) stops.
func runtimeRestartCommand(stdout io.Writer) *cobra.Command {
	var path string
	var after, timeout time.Duration
	cmd := &cobra.Command{
		Use:   "restart --config node.yaml",
		Short: "Stop the node runtime and start it again from its config",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := node.LoadNode(path)
			if err != nil {
				return err
			}
			d, err := n.WithDefaults()
			if err != nil {
				return err
			}
			unlock, err := node.LockRestart(d.RunDir)
			if errors.Is(err, node.ErrRestarting) {
				fmt.Fprintln(stdout, err)
				return nil
			}
			if err != nil {
				return err
			}
			defer unlock()
			select {
			case <-cmd.Context().Done():
				return cmd.Context().Err()
			case <-time.After(after):
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if err := runtimeService().StopRuntime(ctx, d.RunDir); err != nil && !errors.Is(err, node.ErrNotRunning) {
				return err
			}
			fmt.Fprintln(stdout, "node runtime stopped")
			return startRuntime(cmd.Context(), stdout, path, n)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "node config file (YAML)")
	cmd.Flags().DurationVar(&after, "after", 0, "wait this long before stopping the runtime")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Minute, "how long to wait for the processes to stop")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// daemonize re-executes gravity detached and returns once the daemon holds
// its PID file.
func daemonize(ctx context.Context, stdout io.Writer, path string, n config.Node) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("config path: %w", err)
	}
	d, err := n.WithDefaults()
	if err != nil {
		return err
	}
	if pid, err := node.RunningPID(d.RunDir); err == nil {
		return fmt.Errorf("node runtime: already running (pid %d)", pid)
	} else if !errors.Is(err, node.ErrNotRunning) {
		return err
	}
	logFile := filepath.Join(d.LogDir, node.DaemonLogName)
	pid, err := supervisor.Daemonize(node.ForegroundArgs(abs), logFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := node.WaitStarted(ctx, d.RunDir, pid); err != nil {
		return fmt.Errorf("%w (log: %s)", err, logFile)
	}
	fmt.Fprintf(stdout, "node runtime started (pid %d); log: %s\n", pid, logFile)
	return nil
}

// runtimeService is the host's systemd; tests replace it.
var runtimeService = node.HostService

// unitStartTimeout is the unit's TimeoutStartSec.
const unitStartTimeout = 15 * time.Minute

// startUnit installs and starts the runtime's systemd unit, which runs
// this binary in the foreground.
func startUnit(ctx context.Context, stdout io.Writer, svc node.Service, path string, n config.Node) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("config path: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("node runtime: finding own binary: %w", err)
	}
	d, err := n.WithDefaults()
	if err != nil {
		return err
	}
	// systemctl start waits for READY=1, and keeps waiting while a failing
	// runtime is restarted (systemd/systemd#33890): bound it.
	ctx, cancel := context.WithTimeout(ctx, unitStartTimeout)
	defer cancel()
	if err := svc.Start(ctx, exe, abs, d.RunDir); err != nil {
		return fmt.Errorf("%w (log: journalctl -u %s)", err, node.UnitName)
	}
	fmt.Fprintf(stdout, "node runtime started by systemd (%s); log: journalctl -u %s\n", node.UnitName, node.UnitName)
	return nil
}

func runtimeStopCommand(stdout io.Writer) *cobra.Command {
	var runDir, configPath string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop the node runtime and every process it runs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := runDirOf(configPath, runDir)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			err = runtimeService().StopRuntime(ctx, dir)
			if errors.Is(err, node.ErrNotRunning) {
				fmt.Fprintln(stdout, "node runtime is not running")
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, "node runtime stopped")
			return nil
		},
	}
	addRunDirFlags(cmd, &runDir, &configPath)
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Minute, "how long to wait for the processes to stop")
	return cmd
}

func runtimeStatusCommand(stdout io.Writer) *cobra.Command {
	var runDir, configPath string
	var format output.Format
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the node runtime's processes",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			dir, err := runDirOf(configPath, runDir)
			if err != nil {
				return err
			}
			st, err := node.ReadStatus(dir)
			if err != nil && !errors.Is(err, node.ErrNotRunning) {
				return err
			}
			return output.Print(stdout, format, st, func(w io.Writer) error { return printStatus(w, st) })
		},
	}
	addRunDirFlags(cmd, &runDir, &configPath)
	output.AddFlag(cmd, &format)
	return cmd
}

func printStatus(w io.Writer, st node.Status) error {
	fmt.Fprintf(w, "runtime: %s", st.State)
	if st.Error != "" {
		fmt.Fprintf(w, " (%s)", st.Error)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tSTATE\tPID\tRESTARTS\tLAST EXIT")
	for _, p := range st.Processes {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", p.Name, p.State, p.PID, p.Restarts, p.LastExit)
	}
	return tw.Flush()
}

func addRunDirFlags(cmd *cobra.Command, runDir, configPath *string) {
	cmd.Flags().StringVar(runDir, "run-dir", config.DefaultRunDir, "the runtime's run directory")
	cmd.Flags().StringVar(configPath, "config", "", "node config file to take the run directory from (instead of --run-dir)")
	cmd.MarkFlagsMutuallyExclusive("run-dir", "config")
}

// runDirOf is the run directory of the node config at path, if given.
func runDirOf(path, runDir string) (string, error) {
	if path == "" {
		return runDir, nil
	}
	n, err := node.LoadNode(path)
	if err != nil {
		return "", err
	}
	if n, err = n.WithDefaults(); err != nil {
		return "", err
	}
	return n.RunDir, nil
}

// kubeletExecCommand is how the runtime starts kubelet: with its own view
// of the kernel tunables (node.ExecWithKernelView). Not for people.
func kubeletExecCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:    node.KubeletExecCommand + " --sysctl-dir DIR -- KUBELET ARGS...",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return node.ExecWithKernelView(dir, config.KernelTunables(), args, os.Environ())
		},
	}
	cmd.Flags().StringVar(&dir, "sysctl-dir", "", "directory for the files shown over /proc/sys")
	_ = cmd.MarkFlagRequired("sysctl-dir")
	return cmd
}
