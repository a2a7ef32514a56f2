package tele

import (
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/build"
)

func newBuildCommand(g *globals) *cobra.Command {
	var (
		o     build.Options
		quiet bool
		dirs  []string
	)
	cmd := &cobra.Command{
		Use:   "build [app.yaml | app-dir]",
		Short: "Build a cluster image from an application manifest",
		Long: `Build a cluster image: the application manifest, its Kubernetes resources and Helm
charts, every container image they use and the base image's Kubernetes runtime,
packed into one self-contained tarball (<name>-<version>.tar).

Images are taken from the local image store first (see 'tele image load'), then
from the registry mirrors given and the image's own registry.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ManifestPath = manifestPath(args)
			o.StateDir = g.stateDir
			o.BaseImageDir = baseImageDirs(dirs)
			o.Log = g.logger()
			o.Out = g.stdout
			if quiet {
				o.Out = io.Discard
			} else if p := newProgress(g.stderr); p != nil {
				o.Progress, o.SaveProgress = p.update, p.saving
			}
			_, err := build.Build(cmd.Context(), o)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.OutputPath, "output", "o", "", "cluster image file to write (default <name>-<version>.tar)")
	f.BoolVarP(&o.Overwrite, "overwrite", "f", false, "replace the output file if it exists")
	f.StringArrayVar(&o.Set, "set", nil, "set Helm chart values (key=val), as helm --set")
	f.StringArrayVar(&o.Values, "values", nil, "Helm values file, as helm --values")
	f.StringArrayVar(&o.Mirrors, "registry-mirror", nil, "registry mirror (host[:port]) to try before an image's own registry")
	f.StringArrayVar(&o.Insecure, "insecure-registry", nil, "registry (host[:port]) to reach over plain HTTP")
	f.BoolVar(&o.Offline, "offline", false, "use only the local image store; contact no registry")
	f.StringVar(&o.Platform, "platform", "linux/amd64", "platform of the images to vendor (os/arch[/variant])")
	f.IntVar(&o.Parallel, "parallel", runtime.NumCPU()*2, "number of images to pull at once")
	f.StringVar(&o.BaseImage, "with-base-image", "", "base image to use (name:version), overriding the manifest")
	f.StringVar(&o.From, "from", "", "an earlier cluster image of the app: write a delta upgrade image without what it has")
	f.StringArrayVar(&dirs, "base-image-dir", nil, "directory holding base image files (default: base-images beside tele; $TELE_BASE_IMAGE_DIR)")
	f.BoolVarP(&quiet, "quiet", "q", false, "print nothing but errors")
	_ = cmd.MarkFlagFilename("values", "yaml", "yml")
	cmd.ValidArgsFunction = func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	}
	return cmd
}

// manifestPath accepts app.yaml or the directory holding it, as Gravity did.
func manifestPath(args []string) string {
	if len(args) == 0 {
		return "app.yaml"
	}
	if fi, err := os.Stat(args[0]); err == nil && fi.IsDir() {
		return filepath.Join(args[0], "app.yaml")
	}
	return args[0]
}
