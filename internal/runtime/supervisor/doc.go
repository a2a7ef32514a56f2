// Package supervisor is the node runtime's process supervisor: the stage
// after the cluster image is unpacked on a node, where `gravity` itself runs
// etcd, containerd, the Kubernetes control plane, kubelet and the registry.
//
// It is deliberately small and needs nothing from the host: no systemd (PID 1
// on our machines is not systemd), no cgroup manager. A Supervisor starts an
// ordered list of Processes one at a time, waits for each to pass its
// readiness probe before starting the next, restarts any that exits with an
// exponential backoff, and stops them in reverse order. Each process runs in
// its own process group so that stopping it also stops whatever it spawned.
//
// State that must survive the supervisor itself lives on disk:
//
//	<RunDir>/<name>.pid     pid, start time and path of the running instance;
//	                        a new supervisor kills what a killed one left
//	<LogDir>/<name>.log     stdout and stderr, with a "--- <time> start #N"
//	                        line before each start and "--- <time> exited"
//	                        after each exit, so crashes are visible in place
//
// Daemonize re-executes the current binary detached from the caller, which is
// how `gravity` runs the supervisor on hosts without systemd.
package supervisor
