# Pinned versions: the one place they are set. The Makefile stamps them into
# the binaries; the runtime build reads them from here too.
GRAVITY_VERSION    := 0.1.0
KUBERNETES_VERSION := v1.37.2
HELM_VERSION       := v3.22.0
