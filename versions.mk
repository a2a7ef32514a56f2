# Pinned versions: the one place they are set. The Makefile stamps them into
# the binaries; the runtime build (hack/buildruntime) reads them from here too
# and refuses to build when runtime/*/go.mod disagree (bump both together:
# `cd runtime/etcd && go get -tool go.etcd.io/etcd/server/v3@vX.Y.Z`).
GRAVITY_VERSION      := 0.1.0
KUBERNETES_VERSION   := v1.37.2
HELM_VERSION         := v3.22.0
ETCD_VERSION         := v3.7.3
CONTAINERD_VERSION   := v2.4.2
RUNC_VERSION         := v1.5.2
CNI_PLUGINS_VERSION  := v1.9.1
DISTRIBUTION_VERSION := v3.1.2
COREDNS_VERSION      := v1.15.0
