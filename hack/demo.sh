#!/usr/bin/env bash
# The main job on the bundled example, as a user of the walkthrough runs it:
# build the cluster image on the build box, copy it onto a fresh node (a test
# host: its own network, mount, PID and UTS namespaces; its own /root, /tmp,
# /var), unpack it there and `./gravity install --cloud-provider=generic`.
# `make demo` runs `demo.sh up` once everything is built; `make demo-down`
# runs `demo.sh down`. Nothing on the node reads the build tree: the image
# is copied into the node's own filesystem, so the checkout can live
# anywhere (under /tmp too, which the node does not share).
#
# Settings (make passes them): BUILD, STATE_DIR (tele's), DEMO_PREFIX and
# DEMO_SUBNET (the test host's names and addresses).
set -euo pipefail

BUILD=${BUILD:-build}
STATE_DIR=${STATE_DIR:-$HOME/.gravity}
DEMO_PREFIX=${DEMO_PREFIX:-gdemo}
DEMO_SUBNET=${DEMO_SUBNET:-10.237.0.0/24}
TELE=$BUILD/tele
TESTHOST=$BUILD/testhost
IMAGE=cluster-image-0.0.1.tar

# show prints a command the way make does, then runs it.
show() {
	echo "+ $*" >&2
	"$@"
}

# node runs a command on the demo host, as root there.
node() {
	"$TESTHOST" run --prefix "$DEMO_PREFIX" h1 -- "$@"
}

seconds() { date +%s.%N; }
took() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f s", b - a }'; }

up() {
	mkdir -p "$BUILD/demo"
	local t0 t1 t2 t3 ip
	t0=$(seconds)
	show "$TELE" --state-dir "$STATE_DIR" build examples/gravity101/v1/app.yaml --overwrite -o "$BUILD/demo/$IMAGE"
	show "$TELE" inspect "$BUILD/demo/$IMAGE"
	t1=$(seconds)

	down >/dev/null 2>&1 || true
	ip=$(show "$TESTHOST" up --prefix "$DEMO_PREFIX" --hosts 1 --subnet "$DEMO_SUBNET" | awk '$1 == "h1" { print $2 }')
	echo "node-1 is test host h1 at $ip" >&2
	# As scp would: into the node's own /root.
	show "$TESTHOST" cp --prefix "$DEMO_PREFIX" "$BUILD/demo/$IMAGE" "h1:/root/$IMAGE"
	show node mkdir -p /root/v1
	show node tar -xf "/root/$IMAGE" -C /root/v1
	t2=$(seconds)
	show node sh -c 'cd /root/v1 && ./gravity install --cloud-provider=generic'
	t3=$(seconds)

	show node kubectl get nodes
	show node kubectl get pods -A -o wide
	show node helm ls
	show node gravity status
	# "Accessing Web UI" and "Configuring The Cluster": the first admin's
	# invitation, the agent user and its API token.
	show node gravity users add --roles=@teleadmin admin
	show "$TESTHOST" cp --prefix "$DEMO_PREFIX" examples/gravity101/agent.yaml h1:/root/agent.yaml
	show node gravity resource create /root/agent.yaml
	show node gravity resource get users
	show node gravity resource get tokens --user=agent@example.com

	local run="$TESTHOST run --prefix $DEMO_PREFIX h1 --"
	cat <<EOF

The walkthrough's cluster is up on node-1 (test host h1, $ip).
  tele build: $(took "$t0" "$t1"); copy onto the node and tar -xf: $(took "$t1" "$t2"); gravity install: $(took "$t2" "$t3")

Look around, as on node-1:
  $run kubectl get pods -A -o wide
  $run helm ls
  $run gravity status
  $run gravity plan
  $run curl --cacert /var/lib/gravity/secrets/ca.crt -H "Authorization: Bearer qwe123" https://$ip:3009/v1/resources/users
  $run bash                  # a shell on the node
Remove it all with: make demo-down
EOF
}

down() {
	local rc=0
	if node test -e /usr/local/bin/gravity 2>/dev/null; then
		# leave --force first: it removes the cgroups kubelet made on the
		# shared kernel, which the host's own teardown cannot see.
		show node gravity leave --force || rc=$?
	fi
	show "$TESTHOST" down --prefix "$DEMO_PREFIX" || rc=$?
	return "$rc"
}

case "${1:-}" in
up) up ;;
down) down ;;
*)
	echo "usage: $0 up|down" >&2
	exit 2
	;;
esac
