// Command mkbase writes the base image gravity:<version> that `make` puts
// beside tele, where tele finds it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/opengravity/gravity/internal/baseimage"
)

func main() {
	var o baseimage.BuildOptions
	flag.StringVar(&o.Name, "name", "gravity", "base image name")
	flag.StringVar(&o.Version, "version", "", "base image version (semver)")
	flag.StringVar(&o.Kubernetes, "kubernetes", "", "Kubernetes version the runtime carries")
	flag.StringVar(&o.Gravity, "gravity", "build/gravity", "gravity binary to embed")
	flag.StringVar(&o.Tsh, "tsh", "", "tsh binary to embed (every cluster image built on this base carries it)")
	flag.StringVar(&o.Output, "o", "", "output file")
	var rt baseimage.Runtime
	flag.StringVar(&rt.BinDir, "runtime", "", "runtime binaries (build/runtime/bin); without it the base image carries only gravity")
	flag.StringVar(&rt.Pause, "pause", "build/pause", "pause binary")
	flag.StringVar(&rt.Busybox, "busybox", "/bin/busybox", "static busybox for the hook tools image")
	flag.StringVar(&rt.CoreDNS, "coredns-version", "", "CoreDNS version (its image tag)")
	flag.StringVar(&rt.HelmCompat, "helm-compat", "build/helm", "Helm 2 command-line wrapper (cmd/helm), shipped as bin/helm with the runtime's helm as bin/helm3; empty: the runtime's helm is bin/helm")
	flag.Parse()
	if rt.BinDir != "" {
		o.Runtime = &rt
	}
	if o.Version == "" || o.Output == "" {
		fmt.Fprintln(os.Stderr, "mkbase: -version and -o are required")
		os.Exit(2)
	}
	if err := baseimage.Build(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "mkbase:", err)
		os.Exit(1)
	}
	fmt.Println(o.Output)
}
