#!/usr/bin/env bash
# make cis: install the example on a fresh test host as `make demo` does,
# run hack/cis on the node against it, and remove the host again.
set -euo pipefail
BUILD=${BUILD:-build}
export BUILD DEMO_PREFIX=gcis DEMO_SUBNET=10.234.0.0/24
log=$BUILD/cis/install.log
mkdir -p "$BUILD/cis"
trap 'hack/demo.sh down >/dev/null 2>&1 || true' EXIT
echo "cis: installing the example on test host h1 of $DEMO_PREFIX (log: $log)" >&2
hack/demo.sh up >"$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
"$BUILD/testhost" cp --prefix "$DEMO_PREFIX" "$BUILD/cis/cis" h1:/root/cis
"$BUILD/testhost" cp --prefix "$DEMO_PREFIX" docs/security.md h1:/root/security.md
"$BUILD/testhost" run --prefix "$DEMO_PREFIX" h1 -- /root/cis -accepted /root/security.md "$@"
