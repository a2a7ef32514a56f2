package clusterimage

import "fmt"

// installScript runs the embedded gravity binary from the directory the
// image was unpacked into, whatever the caller's working directory.
const installScript = `#!/bin/sh
# Installs a cluster from this cluster image. Arguments are passed to
# "gravity install"; see "./gravity install --help".
set -e
cd "$(dirname "$0")"
exec ./gravity install "$@"
`

// uploadScript imports this image into the cluster of the master it runs
// on (packages and registry images), as Gravity's `./upload` did.
const uploadScript = `#!/bin/sh
# Imports this cluster image into the cluster, from a master: its packages
# into the cluster's store and its images into every master's registry.
set -e
cd "$(dirname "$0")"
exec ./gravity upload "$@"
`

// upgradeScript uploads, then upgrades the cluster to this image;
// arguments go to "gravity upgrade".
const upgradeScript = `#!/bin/sh
# Upgrades the cluster to this cluster image, from a master: ./upload, then
# "gravity upgrade" with the given arguments; see "./gravity upgrade --help".
set -e
cd "$(dirname "$0")"
./gravity upload
exec ./gravity upgrade "$@"
`

func readme(s Spec) string {
	base := s.BaseImage
	if base == "" {
		base = "(none recorded)"
	}
	return fmt.Sprintf(`%[1]s %[2]s: cluster image
%[3]s

This is a self-contained cluster image: the application, the Kubernetes
runtime it is built on (base image %[4]s) and every container image it
needs, so it installs without network access.

To install a cluster on this node, unpack the image and run:

    tar -xf %[1]s-%[2]s.tar -C <dir>
    cd <dir>
    sudo ./gravity install --cloud-provider=generic

Contents:

    manifest.json  metadata of this image (name, version, packages, images)
    app.yaml       the application manifest as written
    gravity        the node binary
    tsh            the build box's client: tsh login, tsh ls, tsh ssh, kubectl
    install        runs "./gravity install" with the given arguments
    upgrade        on a master of a running cluster: ./upload, then
                   "./gravity upgrade" with the given arguments
    upload         imports this image into the cluster (packages and images)
    packages/      an OCI image layout with the packages and container images

Built by %[5]s.
`, s.Name, s.Version, underline(s.Name+" "+s.Version+": cluster image"), base, orUnknown(s.CreatedBy))
}

func underline(s string) string {
	b := make([]byte, len(s))
	for i := range b {
		b[i] = '='
	}
	return string(b)
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown tool"
	}
	return s
}
