// Package testhost makes N "hosts" on this one machine for end-to-end tests,
// each as separate as a machine can be on a shared kernel: its own network
// namespace on a private bridge, and its own mount, PID, UTS and IPC
// namespaces with copy-on-write views of /usr, /etc, /root and /opt, its own
// /var on a real filesystem and private /run and /tmp.
//
// Each host is a long-lived init that is PID 1 of the host: the calling
// binary itself, re-executed (any binary importing this package serves, via
// this package's init function); commands enter it with nsenter. Every kernel object
// carries the network's name prefix, so Cleanup can remove what a killed run
// left behind without touching anything else.
//
// What hosts share with the real machine: the kernel (sysctls outside the
// network namespace, cgroups, /dev) and every directory not listed above
// (/home, /srv, /mnt, the source tree), which is how tests hand them files;
// go test's binaries live under the private /tmp, so copy them in through
// Host.Path.
// The real machine is reachable from the hosts at the bridge address.
//
// Test packages that run at the same time need distinct prefixes and
// subnets. Needs root, iproute2, util-linux (nsenter) and iptables.
package testhost
