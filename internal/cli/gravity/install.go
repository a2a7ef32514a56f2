package gravity

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/cli/output"
	"github.com/opengravity/gravity/internal/install"
	"github.com/opengravity/gravity/internal/install/preflight"
	"github.com/opengravity/gravity/internal/runtime/config"
)

func installCommand(stdout, stderr io.Writer) *cobra.Command {
	o := install.Options{StateDir: config.DefaultStateDir, CloudProvider: "generic", LogFile: install.DefaultLogFile}
	var debug bool
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install a cluster on this node from the cluster image it was unpacked from",
		Long: `Install a cluster on this node from the cluster image this gravity binary was
unpacked with: the Kubernetes runtime, the cluster registry filled with the
image's container images, the system apps and the application, through the
application's install hook.

The operation runs as a plan of phases, saved in the state directory before
anything changes: if it fails or is interrupted, fix the problem and run
` + "`gravity plan resume`" + `, or undo it with ` + "`gravity plan rollback`" + `.`,
		Example: "  sudo ./gravity install --cloud-provider=generic",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireRoot("install"); err != nil {
				return err
			}
			dir, err := imageDir(o.ImageDir)
			if err != nil {
				return err
			}
			o.ImageDir, o.Out = dir, stdout
			o.Log = output.NewLogger("gravity", stderr, debug)
			return install.Install(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.AdvertiseAddr, "advertise-addr", "", "the IP address this node is reached at by the other nodes and clients (default: its only IPv4 address)")
	f.StringVar(&o.Token, "token", "", "the join token agents and joining nodes present (at least 12 letters, digits, -, _ or .; default: a random one)")
	f.DurationVar(&o.TokenTTL, "token-ttl", 0, "make the join token expire this long after the install starts (at least 10m; default: never)")
	f.StringVar(&o.Cluster, "cluster", "", "the cluster's name (default: a generated one, e.g. bravefalcon1234)")
	f.StringVar(&o.CloudProvider, "cloud-provider", o.CloudProvider, "cloud integration: generic (bare metal, no cloud integration) is the only one supported")
	f.StringVar(&o.PodCIDR, "pod-network-cidr", config.DefaultPodCIDR, "the pod network; each node takes a /24 of it")
	f.StringVar(&o.ServiceCIDR, "service-cidr", config.DefaultServiceCIDR, "the Kubernetes service network")
	f.StringVar(&o.Role, "role", "", "this node's profile from the manifest's nodeProfiles (default: the flavor's first, the default flavor's first, or the only profile; \"node\" when the manifest has none)")
	f.StringVar(&o.Flavor, "flavor", "", "the install flavor from the manifest's installer.flavors")
	f.StringVar(&o.StateDir, "state-dir", o.StateDir, "where the cluster keeps its state on this node")
	f.StringSliceVar(&o.SkipChecks, "skip-check", nil, "skip the named preflight check (repeatable): "+strings.Join(preflight.Checks(), ", "))
	f.StringVar(&o.PreflightReport, "preflight-report", "", "write the preflight checks' results as JSON to this file")
	f.StringVar(&o.ImageDir, "image-dir", "", "the unpacked cluster image (default: the directory of this gravity binary)")
	f.BoolVar(&debug, "debug", false, "verbose logs on stderr")
	_ = f.MarkHidden("image-dir")
	cmd.AddCommand(installAgentCommand(stderr), installPhaseCommand(stdout))
	return cmd
}

func requireRoot(what string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s must run as root (try: sudo ./gravity %s)", what, what)
	}
	return nil
}

// imageDir is the unpacked cluster image: the directory of this binary,
// as the image's install script runs it.
func imageDir(flag string) (string, error) {
	if flag != "" {
		return filepath.Abs(flag)
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	self, err = filepath.EvalSymlinks(self)
	if err != nil {
		return "", err
	}
	return filepath.Dir(self), nil
}

// installAgentCommand is the install agent the installer starts on its
// node: credentials come on stdin.
func installAgentCommand(stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:    "agent",
		Short:  "Run an install agent (started by the installer)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return install.RunAgent(cmd.Context(), os.Stdin, output.NewLogger("gravity-agent", stderr, true))
		},
	}
}

// installPhaseCommand runs one node phase for the agent; the phase input
// (operation config, CA set) comes on stdin.
func installPhaseCommand(stdout io.Writer) *cobra.Command {
	var rollback bool
	cmd := &cobra.Command{
		Use:    "phase ID",
		Short:  "Run one node phase of an install plan (run by the install agent)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in install.PhaseInput
			if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
				return errors.New("install phase: no phase input on stdin")
			}
			return install.RunNodePhase(cmd.Context(), in, args[0], rollback, stdout)
		},
	}
	cmd.Flags().BoolVar(&rollback, "rollback", false, "roll the phase back")
	return cmd
}
