package tele

import (
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/baseimage"
	"github.com/opengravity/gravity/internal/cli/output"
	"github.com/opengravity/gravity/internal/store"
)

func newImageCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage tele's local image store",
	}
	cmd.AddCommand(newImageLoadCommand(g), newImageLsCommand(g))
	return cmd
}

func openStore(g *globals) (*store.Store, error) {
	s, err := store.Open(filepath.Join(g.stateDir, "store"))
	if err != nil {
		return nil, fmt.Errorf("opening the local store in %s: %w", g.stateDir, err)
	}
	return s, nil
}

func newFinder(g *globals, dirs []string) (*baseimage.Finder, error) {
	s, err := openStore(g)
	if err != nil {
		return nil, err
	}
	return &baseimage.Finder{Store: s, StateDir: g.stateDir, Dirs: baseImageDirs(dirs)}, nil
}

func newImageLoadCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "load FILE...",
		Short: "Import images from a docker-archive, OCI archive or OCI layout into the local store",
		Long: `Import container images into tele's local image store, the way an air-gapped
build machine gets them: from 'docker save' tarballs, OCI archives or OCI layout
directories. 'tele build' uses images from this store before any registry.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore(g)
			if err != nil {
				return err
			}
			for _, file := range args {
				entries, err := s.Load(cmd.Context(), file)
				if err != nil {
					return fmt.Errorf("loading %s: %w", file, err)
				}
				for _, e := range entries {
					fmt.Fprintf(g.stdout, "Loaded image %s (%s)\n", e.Ref, e.Digest)
				}
			}
			return nil
		},
	}
}

func newImageLsCommand(g *globals) *cobra.Command {
	var format output.Format
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the images and packages in the local store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openStore(g)
			if err != nil {
				return err
			}
			entries, err := s.Entries()
			if err != nil {
				return err
			}
			return output.Print(g.stdout, format, entries, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "Name\tKind\tDigest\tSize")
				for _, e := range entries {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Ref, e.Kind, shortDigest(e.Digest.String()), humanBytes(e.Size))
				}
				return tw.Flush()
			})
		},
	}
	output.AddFlag(cmd, &format)
	return cmd
}
