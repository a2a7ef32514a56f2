package tele

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/cli/output"
	"github.com/opengravity/gravity/internal/clusterimage"
)

func newInspectCommand(g *globals) *cobra.Command {
	var (
		format output.Format
		verify bool
	)
	cmd := &cobra.Command{
		Use:   "inspect IMAGE.tar",
		Short: "Show what a cluster image holds: manifest, base image, packages and images",
		Args:  cobra.ExactArgs(1),
		Long: `Show what a cluster image holds. Only its first entry is read, which records
the tarball's length: a copy cut short or with bytes appended is refused,
naming how many bytes are missing or extra, with exit code 3. --verify reads
the whole file and checks every entry against its digest.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			img, err := clusterimage.Open(args[0])
			if err != nil {
				return err
			}
			if verify {
				if err := clusterimage.Verify(cmd.Context(), args[0]); err != nil {
					return err
				}
			}
			return output.Print(g.stdout, format, img.Meta, func(w io.Writer) error {
				return printInspect(w, img.Meta, verify)
			})
		},
	}
	cmd.Flags().BoolVar(&verify, "verify", false, "also check every blob's digest (reads the whole file)")
	output.AddFlag(cmd, &format)
	return cmd
}

func printInspect(w io.Writer, m clusterimage.Meta, verified bool) error {
	fmt.Fprintf(w, "Name:\t\t%s\nVersion:\t%s\nBase image:\t%s\nCreated by:\t%s\n", m.Name, m.Version, m.BaseImage, m.CreatedBy)
	if d := m.Delta; d != nil {
		var n int64
		for _, b := range d.Blobs {
			n += b.Size
		}
		fmt.Fprintf(w, "Delta:\t\tagainst %s: %d blobs (%s) left out, which the cluster must have\n", d.From, len(d.Blobs), humanBytes(n))
	}
	if verified {
		fmt.Fprintln(w, "Verified:\tevery blob matches its digest")
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "\nPackages:\t\t")
	fmt.Fprintln(tw, "  Name\tDigest\tSize")
	for _, p := range m.Packages {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", p.Ref, shortDigest(p.Digest), humanBytes(p.Size))
	}
	fmt.Fprintln(tw, "\nImages:\t\t")
	fmt.Fprintln(tw, "  Name\tDigest\tSize")
	for _, p := range m.Images {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", p.Ref, shortDigest(p.Digest), humanBytes(p.Size))
	}
	return tw.Flush()
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
