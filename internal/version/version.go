// Package version reports what a binary was built from. The variables are
// stamped at link time by the Makefile (-X); the defaults describe a plain
// `go build`, so an unstamped binary says so instead of lying.
package version

import (
	"runtime"
	"runtime/debug"
)

var (
	// Version is the gravity release; base images are named gravity:<Version>.
	Version = "0.1.0"
	// Commit is the git commit the binary was built from.
	Commit = "unknown"
	// Kubernetes is the Kubernetes release the base image of this version carries.
	Kubernetes = "v1.37.2"
)

// Info is what `tele version` and `gravity version` print.
type Info struct {
	Version    string `json:"version"`
	Commit     string `json:"gitCommit"`
	Kubernetes string `json:"kubernetesVersion"`
	Helm       string `json:"helmVersion"`
	Go         string `json:"goVersion"`
	Platform   string `json:"platform"`
}

// Get returns the version information of the running binary.
func Get() Info {
	return Info{
		Version:    Version,
		Commit:     Commit,
		Kubernetes: Kubernetes,
		Helm:       moduleVersion("helm.sh/helm/v3"),
		Go:         runtime.Version(),
		Platform:   runtime.GOOS + "/" + runtime.GOARCH,
	}
}

// moduleVersion reads the version of a linked module from the build info, so
// the Helm version reported is the one actually compiled in.
func moduleVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, m := range bi.Deps {
		if m.Path == path {
			if m.Replace != nil {
				return m.Replace.Version
			}
			return m.Version
		}
	}
	return "unknown"
}
