// Package config generates the configuration of every node runtime
// component (etcd, containerd, the Kubernetes components, the CNI network,
// the cluster registry and CoreDNS) from one Node.
//
// Everything here is a pure function of the Node: the same Node always
// gives the same bytes, so the supervisor can regenerate the files on every
// start and a golden test pins them. Nothing generated points outside the
// cluster: the runtime is air-gapped unless the Node asks for DNS upstreams.
// The only I/O is Write, and DetectSnapshotter, which looks at the host.
package config
