package tele

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/baseimage"
	"github.com/opengravity/gravity/internal/cli/output"
)

type listedImage struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Type        string `json:"type"`
	Created     string `json:"created,omitempty"`
	Description string `json:"description"`
	Imported    bool   `json:"imported"`
	File        string `json:"file,omitempty"`
}

func newLsCommand(g *globals) *cobra.Command {
	var (
		format output.Format
		all    bool
		dirs   []string
	)
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the base images tele can build on",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			finder, err := newFinder(g, dirs)
			if err != nil {
				return err
			}
			imgs, err := finder.List()
			if err != nil {
				return err
			}
			if !all {
				imgs = latestStable(imgs)
			}
			listed := make([]listedImage, len(imgs))
			for i, img := range imgs {
				listed[i] = listedImage{
					Name: img.Name, Version: img.Version, Type: "Cluster", Created: img.Meta.Created,
					Description: img.Meta.Description, Imported: img.InStore, File: img.File,
				}
			}
			return output.Print(g.stdout, format, listed, func(w io.Writer) error { return printImages(w, listed, all) })
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "show every version, not only the latest stable one")
	cmd.Flags().StringArrayVar(&dirs, "base-image-dir", nil, "directory holding base image files (default: base-images beside tele)")
	output.AddFlag(cmd, &format)
	return cmd
}

func printImages(w io.Writer, imgs []listedImage, all bool) error {
	if !all {
		fmt.Fprintln(w, "Displaying latest stable versions of images. Use --all flag to show all.")
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "Name:Version\tImage Type\tCreated (UTC)\tDescription")
	fmt.Fprintln(tw, "------------\t----------\t-------------\t-----------")
	for _, img := range imgs {
		fmt.Fprintf(tw, "%s:%s\t%s\t%s\t%s\n", img.Name, img.Version, img.Type, shortTime(img.Created), img.Description)
	}
	return tw.Flush()
}

func shortTime(rfc3339 string) string {
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

// latestStable keeps the newest release (no pre-release suffix) of each name;
// List sorts newest first.
func latestStable(imgs []baseimage.Image) []baseimage.Image {
	seen := map[string]bool{}
	var out []baseimage.Image
	for _, img := range imgs {
		v, err := semver.NewVersion(img.Version)
		if err != nil || v.Prerelease() != "" || seen[img.Name] {
			continue
		}
		seen[img.Name] = true
		out = append(out, img)
	}
	return out
}
