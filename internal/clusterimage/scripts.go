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

// notSupportedScript is the body of the scripts whose operations gravity
// does not implement yet; they exist so the layout is final and scripts
// written against it keep working once they do.
func notSupportedScript(op string) string {
	return fmt.Sprintf(`#!/bin/sh
# %[1]s is not supported yet: this script is a placeholder that keeps the
# cluster image layout stable until gravity implements it.
echo "%[1]s: not supported yet" >&2
exit 1
`, op)
}

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
    install        runs "./gravity install" with the given arguments
    upgrade        not supported yet
    upload         not supported yet
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
