package node

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/opengravity/gravity/internal/access"
	"github.com/opengravity/gravity/internal/nodeagent"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/runtime/supervisor"
)

// Names of the supervised processes, which also name their log files
// (<LogDir>/<name>.log) and PID files.
const (
	Etcd              = "etcd"
	APIServer         = "kube-apiserver"
	ControllerManager = "kube-controller-manager"
	Scheduler         = "kube-scheduler"
	Containerd        = "containerd"
	Kubelet           = "kubelet"
	KubeProxy         = "kube-proxy"
	PodNetwork        = "pod-network"
	Registry          = "registry"
	RegistryGate      = "registry-gate"
	CSRApprover       = "csr-approver"
	ClusterService    = "cluster-service"
	APILB             = "api-lb"
	Agent             = "agent"
	AccessProxy       = "access-proxy"
	SSH               = "ssh"
)

// PodNetworkCommand is the hidden `gravity runtime` subcommand that runs
// the pod network agent (podnet.Agent).
const PodNetworkCommand = "pod-network"

// Ports the components listen on besides config's service ports.
const (
	KubeletPort           = 10250
	KubeletHealthzPort    = 10248
	KubeProxyHealthzPort  = 10256
	KubeProxyMetricsPort  = 10249
	PodNetworkHealthzPort = 10263
	CSRApproverHealthPort = 10264
	AgentHealthPort       = 10265
	AccessProxyHealthPort = 10266
	SSHHealthPort         = 10267
	// ClusterServicePort is the cluster service's API (Gravity's
	// gravity-site port).
	ClusterServicePort = 3009
	// ClusterServiceWebPort serves the same API and the web panel at the
	// cluster management URL (Gravity's NodePort of gravity-site); the
	// cluster's NodePort range ends below it (config.NodePortRange).
	ClusterServiceWebPort = 32009
	ControllerManagerPort = 10257
	SchedulerPort         = 10259
)

const (
	// kubeBinary is the multicall binary of the Kubernetes components. Each
	// runs through the link named after it (bin/kube-apiserver → kube), so
	// that its process has the upstream name that ps -C, top, pkill,
	// monitoring and CIS scanners look for.
	kubeBinary = "kube"
	// gravityBinary stands for the running gravity binary, whose hidden
	// `runtime` subcommands are components too.
	gravityBinary = "gravity"
	systemPath    = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	loopback      = "127.0.0.1"
	// The API server can take a while on a slow disk: it waits for etcd
	// and installs its bootstrap objects before /readyz passes.
	apiServerReadyTimeout = 2 * time.Minute
)

// runsOn says which nodes run a component.
type runsOn int

const (
	everyNode runsOn = iota
	mastersOnly
	// workersOnly: what a master has of its own (the API server).
	workersOnly
)

func (r runsOn) on(n config.Node) bool {
	switch r {
	case mastersOnly:
		return n.IsMaster()
	case workersOnly:
		return !n.IsMaster()
	}
	return true
}

// component is one process of a node, on the nodes runsOn says. kube
// components run from the multicall binary's link named after them.
type component struct {
	name   string
	runsOn runsOn
	bin    string
	args   func(config.Node) ([]string, error)
	probe  func(config.Node) Probe
	ports  []int
}

// components is the start order: etcd before the API server that stores in
// it, the control plane before the node agents that register with it,
// containerd before kubelet, and the registry last since pods pull from it
// only once they are scheduled.
var components = []component{
	{Etcd, mastersOnly, "etcd", etcdArgs, etcdProbe, []int{config.EtcdClientPort, config.EtcdPeerPort}},
	{APIServer, mastersOnly, kubeBinary, config.APIServerArgs, apiServerProbe, []int{config.APIServerPort}},
	{ControllerManager, mastersOnly, kubeBinary, config.ControllerManagerArgs, tcpProbe(ControllerManagerPort), []int{ControllerManagerPort}},
	{Scheduler, mastersOnly, kubeBinary, config.SchedulerArgs, tcpProbe(SchedulerPort), []int{SchedulerPort}},
	// A worker reaches the API servers through its own balancer, which
	// must be there before anything on the node calls the API.
	{APILB, workersOnly, gravityBinary, apiLBArgs, tcpProbe(config.APIServerPort), []int{config.APIServerPort}},
	// containerd listens on its unix socket only (no TCP service; the CRI
	// streaming server takes a random loopback port).
	{Containerd, everyNode, "containerd", containerdArgs, containerdProbe, nil},
	{Kubelet, everyNode, kubeBinary, config.KubeletArgs, httpProbe(KubeletHealthzPort), []int{KubeletPort, KubeletHealthzPort}},
	{KubeProxy, everyNode, kubeBinary, config.KubeProxyArgs, httpProbe(KubeProxyHealthzPort), []int{KubeProxyHealthzPort, KubeProxyMetricsPort}},
	// The pod network agent needs the node registered, which kubelet does
	// soon after it is ready; pods on other nodes are unreachable until it is.
	{PodNetwork, everyNode, gravityBinary, podNetworkArgs, httpProbe(PodNetworkHealthzPort), []int{PodNetworkHealthzPort}},
	// The registry listens on a unix socket; its gate serves the network
	// and decides who may pull and who may push.
	{Registry, mastersOnly, "registry", config.RegistryArgs, registrySocketProbe, nil},
	{RegistryGate, mastersOnly, gravityBinary, config.RegistryGateArgs, registryProbe, []int{config.RegistryPort}},
	// Approves kubelets' serving certificate requests; nothing waits on it
	// but kubelets' serving endpoints (logs, exec).
	{CSRApprover, mastersOnly, gravityBinary, csrApproverArgs, httpProbe(CSRApproverHealthPort), []int{CSRApproverHealthPort}},
	// Accepts joining nodes and serves them packages (internal/clusterservice).
	{ClusterService, mastersOnly, gravityBinary, clusterServiceArgs, clusterServiceProbe, []int{ClusterServicePort, ClusterServiceWebPort}},
	// Runs the phases of operations that masters drive (internal/nodeagent);
	// nothing on the node waits on it.
	{Agent, everyNode, gravityBinary, agentArgs, httpProbe(AgentHealthPort), []int{nodeagent.Port, AgentHealthPort}},
	// The SSH and Kubernetes proxies of `tsh` (internal/accessproxy), and
	// the SSH service they reach every node by (internal/sshnode), which
	// listens once a master has signed its host certificate.
	{AccessProxy, mastersOnly, gravityBinary, accessProxyArgs, httpProbe(AccessProxyHealthPort), []int{access.ProxySSHPort, access.KubePort, AccessProxyHealthPort}},
	{SSH, everyNode, gravityBinary, sshArgs, httpProbe(SSHHealthPort), []int{access.NodeSSHPort, SSHHealthPort}},
}

// Processes is what node n runs, in start order. The probes' TLS
// configurations are made by tls from the node's certificate files, which
// must already exist (Bootstrap, IssueNode).
func Processes(n config.Node, tls ProbeTLS) ([]supervisor.Process, error) {
	n, err := n.WithDefaults()
	if err != nil {
		return nil, err
	}
	p := n.Paths()
	var out []supervisor.Process
	for _, c := range components {
		if !c.runsOn.on(n) {
			continue
		}
		args, err := c.args(n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
		path := p.Bin(c.bin)
		switch c.bin {
		case kubeBinary:
			path = p.Bin(c.name)
		case gravityBinary:
			if path, err = os.Executable(); err != nil {
				return nil, fmt.Errorf("%s: finding the gravity binary: %w", c.name, err)
			}
		}
		ready, err := c.probe(n).Func(tls)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
		proc := supervisor.Process{
			Name: c.name, Path: path, Args: args, LogDir: n.LogDir, Ready: ready, Ports: c.ports,
			Env: processEnv(n),
		}
		if c.name == APIServer {
			proc.ReadyTimeout = apiServerReadyTimeout
		}
		if c.name == Etcd && joiningEtcd(n) {
			proc.RestartIfNotReady = etcdJoinRestart
		}
		if c.name == Kubelet && !n.ModifyKernelDefaults {
			if proc, err = withKernelView(proc, n); err != nil {
				return nil, err
			}
		}
		out = append(out, proc)
	}
	return out, nil
}

// withKernelView starts kubelet through `gravity runtime kubelet-exec`
// (ExecWithKernelView), so it sees the kernel tunables it wants without
// their being changed on the host.
func withKernelView(proc supervisor.Process, n config.Node) (supervisor.Process, error) {
	self, err := os.Executable()
	if err != nil {
		return proc, fmt.Errorf("kubelet: finding the gravity binary: %w", err)
	}
	proc.Args = append([]string{"runtime", KubeletExecCommand, "--sysctl-dir", filepath.Join(n.RunDir, "sysctl"), "--", proc.Path}, proc.Args...)
	proc.Path = self
	return proc, nil
}

// processEnv is added to the daemon's environment, which is the caller's
// of `gravity runtime start`. Binaries find their helpers (containerd its
// shim and runc) in BinDir before the host's tools (iptables, mount). A
// proxy in the caller's environment is blanked: containerd would pull and
// the API server call webhooks through it, out of an air-gapped cluster.
func processEnv(n config.Node) []string {
	// The registry exports OpenTelemetry traces to localhost:4318 unless
	// told not to; no component sends telemetry anywhere.
	env := []string{"PATH=" + n.BinDir + ":" + systemPath, "OTEL_TRACES_EXPORTER=none"}
	for _, v := range []string{"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"} {
		env = append(env, v+"=")
	}
	return env
}

// Probes are the readiness probes of node n's processes by name.
func Probes(n config.Node) (map[string]Probe, error) {
	n, err := n.WithDefaults()
	if err != nil {
		return nil, err
	}
	out := map[string]Probe{}
	for _, c := range components {
		if c.runsOn.on(n) {
			out[c.name] = c.probe(n)
		}
	}
	return out, nil
}

// EtcdClusterState is how n's etcd member starts: the first listed master
// bootstraps a new cluster, every other master joins the existing one
// (after the joiner added it as a member). etcd ignores it once its data
// directory exists, so it matters on the first start only.
func EtcdClusterState(n config.Node) config.ClusterState {
	if len(n.MasterIPs) > 0 && n.MasterIPs[0].Equal(n.IP) {
		return config.ClusterStateNew
	}
	return config.ClusterStateExisting
}

// MasterOnlyFiles are the runtime package's files that only masters run,
// by path in the package: the binaries of master-only components that no
// other component shares, and etcd's client tool. A worker leaves them out
// (about a fifth of the runtime), which is that much less to write on a
// joining node.
func MasterOnlyFiles() []string {
	shared := map[string]bool{}
	for _, c := range components {
		if c.runsOn != mastersOnly {
			shared[c.bin] = true
		}
	}
	out := []string{"bin/etcdctl"}
	for _, c := range components {
		if c.runsOn == mastersOnly && !shared[c.bin] && c.bin != gravityBinary && c.bin != kubeBinary {
			out = append(out, "bin/"+c.bin)
		}
	}
	return out
}

// etcdJoinRestart: a member joining an existing cluster gets the leader's
// snapshot as it starts, and applying it resets its connections to the
// other members. When that drops the message announcing the member to the
// cluster, which it must get through before it serves clients, etcd sends
// it again only after its request timeout (7 s with the default election
// timeout), a known upstream behaviour (etcd-io/etcd#16436). Started
// again, the member has the snapshot, announces itself at once and is
// ready in well under a second: a join's member that is not ready after
// this long is restarted once.
const etcdJoinRestart = 2 * time.Second

// joiningEtcd says whether n's etcd is about to start for the first time
// as a new member of an existing cluster (its data directory not made yet).
func joiningEtcd(n config.Node) bool {
	if EtcdClusterState(n) != config.ClusterStateExisting {
		return false
	}
	_, err := os.Stat(filepath.Join(n.Paths().EtcdData, "member"))
	return errors.Is(err, fs.ErrNotExist)
}

func etcdArgs(n config.Node) ([]string, error) { return config.EtcdArgs(n, EtcdClusterState(n)) }

// CSRApproverCommand is the hidden `gravity runtime` subcommand that runs
// the approver (csrapprove.Approver).
const CSRApproverCommand = "csr-approver"

func csrApproverArgs(n config.Node) ([]string, error) {
	return []string{"runtime", CSRApproverCommand, "--kubeconfig", n.Paths().Kubeconfig(config.KubeconfigCSRApprover),
		"--health-addr", hostPort(loopback, CSRApproverHealthPort)}, nil
}

// ClusterServiceCommand is the hidden `gravity runtime` subcommand that
// runs the cluster service.
const ClusterServiceCommand = "cluster-service"

func clusterServiceArgs(n config.Node) ([]string, error) {
	p := n.Paths()
	return []string{"runtime", ClusterServiceCommand,
		"--addr", hostPort(n.IP.String(), ClusterServicePort), "--web-addr", hostPort(n.IP.String(), ClusterServiceWebPort),
		"--cert", p.Cert(pki.ClusterService), "--key", p.Key(pki.ClusterService), "--pki-dir", p.PKI,
		"--kubeconfig", p.Kubeconfig(config.KubeconfigClusterService), "--node-config", p.NodeConfig,
		"--packages", p.Packages}, nil
}

// AgentCommand is the hidden `gravity runtime` subcommand of the node
// agent. It reads operations with the node's own credentials (kubelet's).
const AgentCommand = "agent"

func agentArgs(n config.Node) ([]string, error) {
	p := n.Paths()
	return []string{"runtime", AgentCommand, "--addr", hostPort(n.IP.String(), nodeagent.Port),
		"--cert", p.Cert(pki.Agent), "--key", p.Key(pki.Agent), "--ca", p.Cert(pki.ClusterCAName),
		"--kubeconfig", p.Kubeconfig(config.KubeconfigKubelet), "--node", n.Name, "--state-dir", n.StateDir,
		"--run-dir", n.RunDir, "--health-addr", hostPort(loopback, AgentHealthPort)}, nil
}

// AccessProxyCommand and SSHCommand are the hidden `gravity runtime`
// subcommands of the access proxy and the node's SSH service.
const (
	AccessProxyCommand = "access-proxy"
	SSHCommand         = "ssh"
)

func accessProxyArgs(n config.Node) ([]string, error) {
	return []string{"runtime", AccessProxyCommand, "--node-config", n.Paths().NodeConfig,
		"--health-addr", hostPort(loopback, AccessProxyHealthPort)}, nil
}

func sshArgs(n config.Node) ([]string, error) {
	return []string{"runtime", SSHCommand, "--node-config", n.Paths().NodeConfig, "--health-addr", hostPort(loopback, SSHHealthPort)}, nil
}

// APILBCommand is the hidden `gravity runtime` subcommand of a worker's
// API load balancer (apilb).
const APILBCommand = "api-lb"

func apiLBArgs(n config.Node) ([]string, error) {
	args := []string{"runtime", APILBCommand, "--listen", hostPort(loopback, config.APIServerPort),
		"--kubeconfig", n.Paths().Kubeconfig(config.KubeconfigKubeProxy)}
	for _, m := range n.MasterIPs {
		args = append(args, "--backend", hostPort(m.String(), config.APIServerPort))
	}
	return args, nil
}

func podNetworkArgs(n config.Node) ([]string, error) {
	return []string{"runtime", PodNetworkCommand,
		"--kubeconfig", n.Paths().Kubeconfig(config.KubeconfigKubeProxy),
		"--node-kubeconfig", n.Paths().Kubeconfig(config.KubeconfigKubelet),
		"--node", n.Name, "--pod-cidr", n.NodePodCIDR, "--cluster-cidr", n.PodCIDR,
		"--health-addr", hostPort(loopback, PodNetworkHealthzPort), "--node-config", n.Paths().NodeConfig}, nil
}

func containerdArgs(n config.Node) ([]string, error) {
	return []string{"--config", n.Paths().ContainerdConfig}, nil
}

func etcdProbe(n config.Node) Probe {
	p := n.Paths()
	return Probe{URL: httpsURL(loopback, config.EtcdClientPort, "/health"),
		CA: p.Cert(pki.EtcdCAName), Cert: p.Cert(pki.APIServerEtcdClient), Key: p.Key(pki.APIServerEtcdClient)}
}

// The API server refuses anonymous requests, /readyz included, and
// listens on the node IP only.
func apiServerProbe(n config.Node) Probe {
	p := n.Paths()
	return Probe{URL: httpsURL(n.IP.String(), config.APIServerPort, "/readyz"),
		CA: p.Cert(pki.ClusterCAName), Cert: p.Cert(pki.Admin), Key: p.Key(pki.Admin)}
}

func registrySocketProbe(n config.Node) Probe {
	return Probe{URL: "unix://" + n.Paths().RegistrySocket}
}

// The registry gate serves only clients with a certificate from the
// cluster CA; this one pulls through it to the registry.
func registryProbe(n config.Node) Probe {
	p := n.Paths()
	return Probe{URL: httpsURL(n.IP.String(), config.RegistryPort, "/v2/"),
		CA: p.Cert(pki.ClusterCAName), Cert: p.Cert(pki.RegistryClient), Key: p.Key(pki.RegistryClient)}
}

// The cluster service's /healthz, over the TLS its clients use.
func clusterServiceProbe(n config.Node) Probe {
	p := n.Paths()
	return Probe{URL: httpsURL(n.IP.String(), ClusterServicePort, "/healthz"),
		CA: p.Cert(pki.ClusterCAName), Cert: p.Cert(pki.RegistryClient), Key: p.Key(pki.RegistryClient)}
}

func containerdProbe(n config.Node) Probe { return Probe{URL: "unix://" + n.Paths().ContainerdSocket} }

// tcpProbe is for the controller manager and the scheduler, which serve
// /healthz over TLS with a self-signed certificate that no CA vouches for:
// a TCP probe says as much without skipping verification.
func tcpProbe(port int) func(config.Node) Probe {
	return func(config.Node) Probe { return Probe{URL: "tcp://" + hostPort(loopback, port)} }
}

// httpProbe is for kubelet and kube-proxy, whose healthz is plain HTTP on
// loopback (config.KubeletConfig, config.KubeProxyConfig), and gravity's
// own components that serve theirs the same way.
func httpProbe(port int) func(config.Node) Probe {
	return func(config.Node) Probe { return Probe{URL: "http://" + hostPort(loopback, port) + "/healthz"} }
}

func httpsURL(host string, port int, path string) string {
	return "https://" + hostPort(host, port) + path
}

func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
