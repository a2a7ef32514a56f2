package gravity

import (
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/cli/output"
	"github.com/opengravity/gravity/internal/install/preflight"
	"github.com/opengravity/gravity/internal/join"
	"github.com/opengravity/gravity/internal/runtime/config"
)

func joinCommand(stdout, stderr io.Writer) *cobra.Command {
	o := join.Options{StateDir: config.DefaultStateDir}
	var debug, master bool
	cmd := &cobra.Command{
		Use:   "join <master>[,<master>...] --token=<token>",
		Short: "Add this host to a cluster, with only this gravity binary copied from a master",
		Long: `Add this host to the cluster a master belongs to. The host needs only the
gravity binary, copied from a master's /usr/local/bin/gravity; everything else
comes from the cluster. The join token (` + "`gravity status`" + ` on a master) is all
the trust there is: the host checks the cluster's CA against it before it
sends anything.

The join runs as a plan of phases saved on this host and in the cluster: if it
fails or is interrupted, run ` + "`gravity join`" + ` again (or ` + "`gravity plan resume`" + `),
or undo it with ` + "`gravity plan rollback`" + `.`,
		Example: "  sudo ./gravity join 10.0.0.1 --token=3c1d5a9f8e2b",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireRoot("join"); err != nil {
				return err
			}
			if len(args) == 1 {
				for _, p := range strings.Split(args[0], ",") {
					if p = strings.TrimSpace(p); p != "" {
						o.Peers = append(o.Peers, p)
					}
				}
			}
			if cmd.Flags().Changed("master") {
				o.Master = &master
			}
			o.Out, o.Log = stdout, output.NewLogger("gravity", stderr, debug)
			return join.Join(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Token, "token", "", "the cluster's join token, as `gravity status --token` prints it on a master")
	f.StringVar(&o.AdvertiseAddr, "advertise-addr", "", "the IP address this node is reached at (default: the one it reaches the master from)")
	f.StringVar(&o.Role, "role", "", "this node's profile from the manifest's nodeProfiles (default: the first master's)")
	f.BoolVar(&master, "master", false, "join as a master (true) or a worker (false); default: a master while the cluster has fewer than 3")
	f.StringVar(&o.StateDir, "state-dir", o.StateDir, "where the cluster keeps its state on this node")
	f.StringSliceVar(&o.SkipChecks, "skip-check", nil, "skip the named preflight check (repeatable): "+strings.Join(preflight.Checks(), ", "))
	f.BoolVar(&debug, "debug", false, "verbose logs on stderr")
	return cmd
}
