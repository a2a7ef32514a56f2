package node

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/runtime/supervisor"
)

// worker is a worker whose certificates were issued from a fresh master.
func worker(t *testing.T) config.Node {
	t.Helper()
	cs, err := pki.LoadCASet(bootstrapped(t).Paths().PKI)
	if err != nil {
		t.Fatal(err)
	}
	w := testWorker(t)
	if err := IssueNode("/", cs, w); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestProcesses(t *testing.T) {
	master, worker := bootstrapped(t), worker(t)
	must := func(args []string, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return args
	}
	type proc struct {
		name, bin string
		args      []string
		ports     []int
	}
	kube := func(n config.Node, name string, gen func(config.Node) ([]string, error), ports ...int) proc {
		return proc{name, name, must(gen(n)), ports}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// kubelet runs through `gravity runtime kubelet-exec` (its own view of
	// the kernel tunables); the rest straight from BinDir.
	kubelet := func(n config.Node) proc {
		direct := kube(n, "kubelet", config.KubeletArgs, 10250, 10248)
		wrap := []string{"runtime", KubeletExecCommand, "--sysctl-dir", filepath.Join(n.RunDir, "sysctl"), "--", n.BinDir + "/kubelet"}
		return proc{"kubelet", self, append(wrap, direct.args...), direct.ports}
	}
	node := func(n config.Node) []proc {
		d, err := n.WithDefaults()
		if err != nil {
			t.Fatal(err)
		}
		return []proc{
			{"containerd", "containerd", []string{"--config", n.Paths().ContainerdConfig}, nil},
			kubelet(n),
			kube(n, "kube-proxy", config.KubeProxyArgs, 10256, 10249),
			{"pod-network", self, []string{"runtime", "pod-network", "--kubeconfig", n.Paths().Kubeconfig("kube-proxy"),
				"--node-kubeconfig", n.Paths().Kubeconfig("kubelet"),
				"--node", d.Name, "--pod-cidr", d.NodePodCIDR, "--cluster-cidr", d.PodCIDR,
				"--health-addr", "127.0.0.1:10263", "--node-config", n.Paths().NodeConfig}, []int{10263}},
		}
	}
	ssh := func(n config.Node) proc {
		return proc{"ssh", self, []string{"runtime", "ssh", "--node-config", n.Paths().NodeConfig, "--health-addr", "127.0.0.1:10267"},
			[]int{3022, 10267}}
	}
	agent := func(n config.Node) proc {
		p := n.Paths()
		return proc{"agent", self, []string{"runtime", "agent", "--addr", n.IP.String() + ":3012",
			"--cert", p.PKI + "/agent.crt", "--key", p.PKI + "/agent.key", "--ca", p.PKI + "/ca.crt",
			"--kubeconfig", p.Kubeconfig("kubelet"), "--node", n.IP.String(), "--state-dir", n.StateDir,
			"--run-dir", n.RunDir, "--health-addr", "127.0.0.1:10265"}, []int{3012, 10265}}
	}
	tests := []struct {
		name string
		n    config.Node
		want []proc
	}{
		{"master", master, slices.Concat([]proc{
			{"etcd", "etcd", must(config.EtcdArgs(master, config.ClusterStateNew)), []int{2379, 2380}},
			kube(master, "kube-apiserver", config.APIServerArgs, 6443),
			kube(master, "kube-controller-manager", config.ControllerManagerArgs, 10257),
			kube(master, "kube-scheduler", config.SchedulerArgs, 10259),
		}, node(master), []proc{{"registry", "registry", must(config.RegistryArgs(master)), nil},
			{"registry-gate", self, must(config.RegistryGateArgs(master)), []int{5000}},
			{"csr-approver", self, must(csrApproverArgs(master)), []int{10264}},
			{"cluster-service", self, must(clusterServiceArgs(master)), []int{3009, 32009}}, agent(master),
			{"access-proxy", self, must(accessProxyArgs(master)), []int{3023, 3026, 10266}}, ssh(master)})},
		{"worker", worker, slices.Concat([]proc{{"api-lb", self, []string{"runtime", "api-lb", "--listen", "127.0.0.1:6443",
			"--kubeconfig", worker.Paths().Kubeconfig("kube-proxy"), "--backend", "192.0.2.10:6443", "--backend", "192.0.2.11:6443"}, []int{6443}}},
			node(worker), []proc{agent(worker), ssh(worker)})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Processes(tt.n, LoadTLS)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d processes %v, want %d", len(got), names(got), len(tt.want))
			}
			for i, w := range tt.want {
				checkProcess(t, tt.n, got[i], w.name, w.bin, w.args, w.ports)
			}
		})
	}
}

func checkProcess(t *testing.T, n config.Node, p supervisor.Process, name, bin string, args []string, ports []int) {
	t.Helper()
	if p.Name != name {
		t.Errorf("process %q, want %q", p.Name, name)
		return
	}
	want := bin
	if !filepath.IsAbs(bin) {
		want = n.BinDir + "/" + bin
	}
	if p.Path != want {
		t.Errorf("%s: path %s, want %s", name, p.Path, want)
	}
	if !reflect.DeepEqual(p.Args, args) {
		t.Errorf("%s: args\n%q\nwant\n%q", name, p.Args, args)
	}
	if !slices.Equal(p.Ports, ports) {
		t.Errorf("%s: ports %v, want %v", name, p.Ports, ports)
	}
	if p.LogDir != n.LogDir || p.Ready == nil {
		t.Errorf("%s: log dir %q (want %q), probe set %v", name, p.LogDir, n.LogDir, p.Ready != nil)
	}
	wantEnv := []string{"PATH=" + n.BinDir + ":" + systemPath, "OTEL_TRACES_EXPORTER=none", "HTTP_PROXY=", "HTTPS_PROXY=", "ALL_PROXY=",
		"http_proxy=", "https_proxy=", "all_proxy="}
	if !slices.Equal(p.Env, wantEnv) {
		t.Errorf("%s: env %q, want %q", name, p.Env, wantEnv)
	}
}

func names(ps []supervisor.Process) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

// The supervisor accepts what Processes makes.
func TestProcessesValidForSupervisor(t *testing.T) {
	n := bootstrapped(t)
	procs, err := Processes(n, LoadTLS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := supervisor.New(supervisor.Config{RunDir: n.RunDir, Processes: procs}); err != nil {
		t.Fatal(err)
	}
}

// Without certificates nothing starts: the probes' TLS files are read up
// front.
func TestProcessesNeedCertificates(t *testing.T) {
	if _, err := Processes(testMaster(t), LoadTLS); err == nil {
		t.Error("no certificates: no error")
	}
	bad := testMaster(t)
	bad.ClusterName = ""
	if _, err := Processes(bad, LoadTLS); err == nil {
		t.Error("invalid node: no error")
	}
}

func TestEtcdClusterState(t *testing.T) {
	m := testMaster(t)
	if got := EtcdClusterState(m); got != config.ClusterStateNew {
		t.Errorf("first master: %s", got)
	}
	m.IP = master2IP
	if got := EtcdClusterState(m); got != config.ClusterStateExisting {
		t.Errorf("second master: %s", got)
	}
}

// Only the first start of a member joining an existing cluster may be
// restarted when it stalls.
func TestJoiningEtcd(t *testing.T) {
	m := testMaster(t)
	m.StateDir = t.TempDir()
	m, err := m.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if joiningEtcd(m) {
		t.Error("the first master's etcd counted as joining")
	}
	m.IP = master2IP
	if !joiningEtcd(m) {
		t.Error("a new member's first start not counted as joining")
	}
	if err := os.MkdirAll(filepath.Join(m.Paths().EtcdData, "member"), 0o700); err != nil {
		t.Fatal(err)
	}
	if joiningEtcd(m) {
		t.Error("a member with data counted as joining")
	}
}

// A worker leaves out the binaries of etcd and the registry, and nothing a
// component on a worker runs.
func TestMasterOnlyFiles(t *testing.T) {
	got := MasterOnlyFiles()
	slices.Sort(got)
	if want := []string{"bin/etcd", "bin/etcdctl", "bin/registry"}; !slices.Equal(got, want) {
		t.Errorf("MasterOnlyFiles() = %v, want %v", got, want)
	}
	procs, err := Processes(worker(t), LoadTLS)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		for _, f := range got {
			if strings.HasSuffix(p.Path, "/"+f) {
				t.Errorf("the worker's %s runs %s, which it leaves out", p.Name, p.Path)
			}
		}
	}
}
