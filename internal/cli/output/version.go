package output

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/version"
)

// VersionCommand is the `version` verb shared by tele and gravity.
func VersionCommand(stdout io.Writer) *cobra.Command {
	var format Format
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, and the Kubernetes and Helm versions it works with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := version.Get()
			return Print(stdout, format, info, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Edition:\t\topen-source\nVersion:\t\t%s\nGit Commit:\t\t%s\nKubernetes Version:\t%s\nHelm Version:\t\t%s\nGo Version:\t\t%s\n",
					info.Version, info.Commit, info.Kubernetes, info.Helm, info.Go)
				return err
			})
		},
	}
	AddFlag(cmd, &format)
	return cmd
}
