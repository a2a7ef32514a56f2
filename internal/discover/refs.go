package discover

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// DefaultRegistry is the cluster-local registry every Gravity cluster runs;
// vendored images are addressed through it once installed.
const DefaultRegistry = "registry.local:5000"

// parseRef validates an image reference as Kubernetes would accept it:
// a tag or digest is optional (a missing tag means "latest").
func parseRef(ref string) (name.Reference, error) {
	if ref != strings.TrimSpace(ref) {
		return nil, fmt.Errorf("image reference %q has surrounding whitespace", ref)
	}
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return nil, fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	return r, nil
}

// splitHost splits ref into its registry host and the path as written,
// using Docker's rule: the first component is a host only if it contains
// "." or ":" or is "localhost". go-containerregistry applies the same rule,
// so the split agrees with what ParseRef validated.
func splitHost(ref string) (host, path string) {
	i := strings.IndexByte(ref, '/')
	if i < 0 {
		return "", ref
	}
	first := ref[:i]
	if strings.ContainsAny(first, ".:") || first == "localhost" {
		return first, ref[i+1:]
	}
	return "", ref
}

// hasTagOrDigest reports whether path (without host) names a tag or digest;
// the ":" of a host port is already gone, so any ":" or "@" after the last
// "/" belongs to the tag or the digest.
func hasTagOrDigest(path string) bool {
	last := path[strings.LastIndexByte(path, '/')+1:]
	return strings.ContainsAny(last, ":@")
}

// ShortName is the image path as written, without its registry host:
// "quay.io/gravitational/debian-tall:stretch" → "gravitational/debian-tall:stretch".
// It is meant for display and does not validate ref.
func ShortName(ref string) string {
	_, path := splitHost(ref)
	return path
}

// LocalName rewrites ref to point at registry, keeping the path exactly as
// written: Docker Hub's implicit "library/" is never added, because the
// vendored image is pushed to the cluster registry under the same path.
// A missing tag becomes ":latest" so the local reference is explicit.
// References already in registry are returned unchanged.
func LocalName(ref, registry string) (string, error) {
	registry = strings.TrimSuffix(registry, "/")
	if err := checkRegistry(registry); err != nil {
		return "", err
	}
	if _, err := parseRef(ref); err != nil {
		return "", err
	}
	host, path := splitHost(ref)
	if host == registry {
		return ref, nil
	}
	if !hasTagOrDigest(path) {
		path += ":latest"
	}
	local := registry + "/" + path
	if _, err := parseRef(local); err != nil {
		return "", fmt.Errorf("rewrite %q for registry %s: %w", ref, registry, err)
	}
	return local, nil
}

// checkRegistry accepts a host[:port] that reads as a host in a reference:
// "myreg/app" would otherwise be the Docker Hub repository myreg/app.
func checkRegistry(registry string) error {
	host, _ := splitHost(registry + "/x")
	if registry == "" || host != registry {
		return fmt.Errorf("invalid registry %q: want host[:port] with a \".\" or \":\", or localhost", registry)
	}
	if _, err := name.NewRegistry(registry, name.WeakValidation); err != nil {
		return fmt.Errorf("invalid registry %q: %w", registry, err)
	}
	return nil
}
