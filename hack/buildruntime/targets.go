package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// target is one shipped binary: package Pkg built inside the runtime module
// Dir, which pins the upstream module it comes from.
type target struct {
	Name  string   // file name under bin/
	Dir   string   // module directory under runtime/
	Pkg   string   // package to build, as `go build` takes it inside Dir
	Cgo   bool     // only runc: its nsenter is C, linked statically
	Tags  []string // build tags
	X     []string // -X importpath.name=value, stamped versions
	Links []string // other names the binary answers to (multicall)
}

// kubeComponents are the names the multicall kube binary dispatches on.
var kubeComponents = []string{
	"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl",
}

// kubeStaging are the k8s.io modules that k8s.io/kubernetes replaces by its
// staging directories; as a dependency each needs a replace by its published
// version (the sample-* modules are not used by any component).
var kubeStaging = prefixed("k8s.io/", "api", "apiextensions-apiserver", "apimachinery", "apiserver",
	"cli-runtime", "client-go", "cloud-provider", "cluster-bootstrap", "code-generator", "component-base",
	"component-helpers", "controller-manager", "cri-api", "cri-client", "cri-streaming", "csi-translation-lib",
	"dynamic-resource-allocation", "endpointslice", "externaljwt", "kms", "kube-aggregator",
	"kube-controller-manager", "kube-proxy", "kube-scheduler", "kubectl", "kubelet", "metrics", "mount-utils",
	"pod-security-admission", "streaming")

// pins lists what each runtime module must require at the versions.mk
// version.
var pins = []pin{
	{"kube", "k8s.io/kubernetes", "KUBERNETES_VERSION"},
	{"etcd", "go.etcd.io/etcd/server/v3", "ETCD_VERSION"},
	{"etcd", "go.etcd.io/etcd/etcdctl/v3", "ETCD_VERSION"},
	{"containerd", "github.com/containerd/containerd/v2", "CONTAINERD_VERSION"},
	{"runc", "github.com/opencontainers/runc", "RUNC_VERSION"},
	{"cni", "github.com/containernetworking/plugins", "CNI_PLUGINS_VERSION"},
	{"registry", "github.com/distribution/distribution/v3", "DISTRIBUTION_VERSION"},
	{"coredns", "github.com/coredns/coredns", "COREDNS_VERSION"},
	{"helm", "helm.sh/helm/v3", "HELM_VERSION"},
}

func prefixed(prefix string, names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	return out
}

// stamps are values for version stamping that come from the module graph
// rather than versions.mk.
type stamps struct {
	KubeBuildDate string // release time of k8s.io/kubernetes, so builds are reproducible
	HelmKubeMinor string // minor of the client-go Helm is built with, as Helm's Makefile stamps it
}

// targets is the build list, in build order: the slowest and most shared
// first, so an interrupted cold build has done the most useful part.
func targets(v map[string]string, s stamps) []target {
	kv := v["KUBERNETES_VERSION"]
	major, minor := kubeMajorMinor(kv)
	const cb, cg = "k8s.io/component-base/version.", "k8s.io/client-go/pkg/version."
	var kubeX []string
	for _, p := range []string{cb, cg} {
		// gitCommit is unknown: the module proxy serves sources, not the
		// commit they came from; "archive" is what Kubernetes stamps for a
		// build from a source archive.
		kubeX = append(kubeX, p+"gitVersion="+kv, p+"gitMajor="+major, p+"gitMinor="+minor,
			p+"gitCommit=", p+"gitTreeState=archive", p+"buildDate="+s.KubeBuildDate)
	}
	const ctrd, cni = "github.com/containerd/containerd/v2/", "github.com/containernetworking/plugins/"
	ctrdX := []string{ctrd + "version.Version=" + v["CONTAINERD_VERSION"], ctrd + "version.Package=github.com/containerd/containerd/v2"}
	cniX := []string{cni + "pkg/utils/buildversion.BuildVersion=" + v["CNI_PLUGINS_VERSION"]}
	const helmv = "helm.sh/helm/v3/"
	return []target{
		{Name: "kube", Dir: "kube", Pkg: ".", X: kubeX, Links: kubeComponents},
		{Name: "containerd", Dir: "containerd", Pkg: ctrd + "cmd/containerd", X: ctrdX},
		{Name: "containerd-shim-runc-v2", Dir: "containerd", Pkg: ctrd + "cmd/containerd-shim-runc-v2", X: ctrdX},
		{Name: "ctr", Dir: "containerd", Pkg: ctrd + "cmd/ctr", X: ctrdX},
		{Name: "etcd", Dir: "etcd", Pkg: "go.etcd.io/etcd/server/v3"},
		{Name: "etcdctl", Dir: "etcd", Pkg: "go.etcd.io/etcd/etcdctl/v3"},
		{Name: "registry", Dir: "registry", Pkg: "github.com/distribution/distribution/v3/cmd/registry",
			X: []string{"github.com/distribution/distribution/v3/version.version=" + v["DISTRIBUTION_VERSION"]}},
		{Name: "coredns", Dir: "coredns", Pkg: "github.com/coredns/coredns",
			X: []string{"github.com/coredns/coredns/coremain.gitTag=" + v["COREDNS_VERSION"],
				"github.com/coredns/coredns/coremain.gitNearestTag=" + v["COREDNS_VERSION"]}},
		{Name: "helm", Dir: "helm", Pkg: helmv + "cmd/helm", X: []string{
			helmv + "internal/version.version=" + v["HELM_VERSION"], helmv + "internal/version.metadata=",
			helmv + "internal/version.gitTreeState=clean",
			helmv + "pkg/lint/rules.k8sVersionMajor=1", helmv + "pkg/lint/rules.k8sVersionMinor=" + s.HelmKubeMinor,
			helmv + "pkg/chartutil.k8sVersionMajor=1", helmv + "pkg/chartutil.k8sVersionMinor=" + s.HelmKubeMinor}},
		// runc's version comes from its embedded VERSION file; netgo and
		// osusergo keep glibc's NSS (which cannot be linked statically) out.
		{Name: "runc", Dir: "runc", Pkg: "github.com/opencontainers/runc", Cgo: true,
			Tags: []string{"seccomp", "urfave_cli_no_docs", "netgo", "osusergo"}},
		{Name: "bridge", Dir: "cni", Pkg: cni + "plugins/main/bridge", X: cniX},
		{Name: "host-local", Dir: "cni", Pkg: cni + "plugins/ipam/host-local", X: cniX},
		{Name: "loopback", Dir: "cni", Pkg: cni + "plugins/main/loopback", X: cniX},
		{Name: "portmap", Dir: "cni", Pkg: cni + "plugins/meta/portmap", X: cniX},
	}
}

// kubeMajorMinor splits v1.37.2 into "1" and "37" for gitMajor/gitMinor.
func kubeMajorMinor(v string) (string, string) {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return "", ""
	}
	return parts[0], parts[1]
}

// moduleInfo is what `go list -m -json` says about one module of a build.
type moduleInfo struct {
	Version, Time string
}

func listModule(ctx context.Context, dir, path string) (*moduleInfo, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-json", path)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -m %s in %s: %w", path, dir, err)
	}
	var m moduleInfo
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("parse go list -m %s: %w", path, err)
	}
	return &m, nil
}

// readStamps gathers the module-graph stamps.
func readStamps(ctx context.Context, root string) (stamps, error) {
	k, err := listModule(ctx, root+"/kube", "k8s.io/kubernetes")
	if err != nil {
		return stamps{}, err
	}
	h, err := listModule(ctx, root+"/helm", "k8s.io/client-go")
	if err != nil {
		return stamps{}, err
	}
	_, minor := kubeMajorMinor(strings.Replace(h.Version, "v0.", "v1.", 1))
	if k.Time == "" || minor == "" {
		return stamps{}, fmt.Errorf("no release time for k8s.io/kubernetes (%q) or client-go minor for helm (%q)", k.Time, h.Version)
	}
	return stamps{KubeBuildDate: k.Time, HelmKubeMinor: minor}, nil
}
