// Package clusterimage reads and writes the cluster image: the single,
// self-contained tarball that `tele build` produces and `gravity install`
// consumes. The format is documented in docs/cluster-image-format.md; this
// file holds the layout constants and the metadata types shared by the
// writer, the reader and the unpacker.
package clusterimage

import (
	"fmt"
	"os"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// FormatVersion is the version of the layout this package writes and the
// only one it reads. Bump it on any change an older reader would misread.
// Version 2 added archiveSize.
const FormatVersion = 2

// Top-level entries of a cluster image, in the order they appear.
const (
	ManifestFile    = "manifest.json"
	AppManifestFile = "app.yaml"
	ReadmeFile      = "README"
	InstallScript   = "install"
	UpgradeScript   = "upgrade"
	UploadScript    = "upload"
	GravityBinary   = "gravity"
	// TshBinary is the client of the cluster's proxies for the build box
	// (`./tsh login`); images made before it existed lack it.
	TshBinary   = "tsh"
	PackagesDir = "packages"
)

// Paths inside the OCI image layout held under packages/.
const (
	OCILayoutFile = PackagesDir + "/oci-layout"
	IndexFile     = PackagesDir + "/index.json"
	BlobsDir      = PackagesDir + "/blobs"
	BlobsSHA256   = BlobsDir + "/sha256"
)

// Kinds of root entries in packages/index.json.
const (
	KindPackage = "package"
	KindImage   = "image"
)

// Annotations every packages/index.json entry carries.
const (
	AnnotationRefName = "org.opencontainers.image.ref.name"
	AnnotationKind    = "io.gravity.kind"
)

// PackageArtifactType is the artifactType of gravity packages (created by
// internal/store); recorded here so inspect can tell them apart.
const PackageArtifactType = "application/vnd.gravity.package.v1"

// Modes entries are normalized to.
const (
	modeFile = 0o644
	modeExec = 0o755
	modeDir  = 0o755
)

// DefaultModTime is the mtime of every entry unless SOURCE_DATE_EPOCH is set:
// a constant so that the same inputs always give the same bytes.
var DefaultModTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// maxMetaSize bounds the JSON documents (manifest.json, index.json,
// oci-layout) and the manifests we hold in memory, so a hostile tarball
// cannot make us allocate without limit.
const maxMetaSize = 16 << 20

// Meta is manifest.json: the image's own metadata, read first by Open.
type Meta struct {
	FormatVersion int    `json:"formatVersion"`
	Name          string `json:"name"`
	Version       string `json:"version"`
	BaseImage     string `json:"baseImage,omitempty"`
	CreatedBy     string `json:"createdBy,omitempty"`
	Description   string `json:"description,omitempty"`
	Kubernetes    string `json:"kubernetesVersion,omitempty"`
	// Created is set only from SOURCE_DATE_EPOCH: a wall-clock time would
	// make two builds of the same inputs differ.
	Created string `json:"created,omitempty"`
	// ArchiveSize is the tarball's length in bytes, manifest.json
	// included: a reader of the first entry alone knows whether the file
	// was cut short or had bytes appended.
	ArchiveSize int64 `json:"archiveSize"`
	// Files lists the top-level regular files with their digests so that
	// Verify and Unpack can check them like blobs.
	Files    []File `json:"files"`
	Packages []Item `json:"packages"`
	Images   []Item `json:"images"`
	// Delta, when set, makes this an upgrade image that leaves out the
	// blobs of an earlier image: the cluster it upgrades has them.
	Delta *Delta `json:"delta,omitempty"`
}

// Delta is what an upgrade image leaves out: blobs (layers and configs,
// never manifests, which readers walk) the image it was built from has.
type Delta struct {
	From  string `json:"from"` // "cluster-image:0.0.1"
	Blobs []Blob `json:"blobs"`
}

// Blob is one left-out blob.
type Blob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// omitted are the left-out blobs by digest, with their sizes.
func (m *Meta) omitted() map[v1.Hash]int64 {
	out := map[v1.Hash]int64{}
	if m.Delta != nil {
		for _, b := range m.Delta.Blobs {
			if h, err := v1.NewHash(b.Digest); err == nil {
				out[h] = b.Size
			}
		}
	}
	return out
}

// Omitted lists the blobs a delta image leaves out (none for a full one).
func (m *Meta) Omitted() []Blob {
	if m.Delta == nil {
		return nil
	}
	return m.Delta.Blobs
}

// File is a top-level regular file of the image.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	Digest string `json:"digest"`
	Mode   int64  `json:"mode"`
}

// Item is one root of packages/index.json.
type Item struct {
	Ref       string `json:"ref"`
	Kind      string `json:"kind"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"` // sum of the unique blobs reachable from this root
	MediaType string `json:"mediaType"`
	Platform  string `json:"platform,omitempty"` // "linux/amd64"; comma-separated for an index
}

// createdStamp is the RFC 3339 form of SOURCE_DATE_EPOCH, or "" if unset or
// invalid (modTime reports the invalid case).
func createdStamp() string {
	if _, ok := os.LookupEnv("SOURCE_DATE_EPOCH"); !ok {
		return ""
	}
	t, err := modTime()
	if err != nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// modTime returns the mtime to stamp on entries, honouring
// SOURCE_DATE_EPOCH (https://reproducible-builds.org/specs/source-date-epoch/).
func modTime() (time.Time, error) {
	v, ok := os.LookupEnv("SOURCE_DATE_EPOCH")
	if !ok || v == "" {
		return DefaultModTime, nil
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil || sec < 0 {
		return time.Time{}, fmt.Errorf("invalid SOURCE_DATE_EPOCH %q: want a non-negative number of seconds", v)
	}
	return time.Unix(sec, 0).UTC(), nil
}
