package config

import (
	"net"
)

// Documentation addresses (RFC 5737): nothing connects to them, they only
// fill in configuration.
var (
	masterIP  = net.ParseIP("192.0.2.10").To4()
	master2IP = net.ParseIP("192.0.2.11").To4()
	workerIP  = net.ParseIP("192.0.2.20").To4()
)

func testMaster() Node {
	return Node{
		IP:          masterIP,
		Hostname:    "node-1",
		Roles:       []string{RoleMaster, RoleNode},
		ClusterName: "example",
		MasterIPs:   []net.IP{masterIP, master2IP},
		NodePodCIDR: "10.244.1.0/24",
	}
}

func testWorker() Node {
	return Node{
		IP:          workerIP,
		Hostname:    "node-3",
		Roles:       []string{RoleNode},
		ClusterName: "example",
		MasterIPs:   []net.IP{masterIP, master2IP},
		NodePodCIDR: "10.244.3.0/24",
	}
}

// artifacts is everything generated for a node: files by path and each
// component's arguments.
type artifacts struct {
	files map[string][]byte
	args  map[string][]string
}

func generate(n Node) (artifacts, error) {
	files, err := Files(n)
	if err != nil {
		return artifacts{}, err
	}
	a := artifacts{files: files, args: map[string][]string{}}
	gens := map[string]func(Node) ([]string, error){
		"kubelet":    KubeletArgs,
		"kube-proxy": KubeProxyArgs,
	}
	if n.IsMaster() {
		gens["kube-apiserver"] = APIServerArgs
		gens["kube-controller-manager"] = ControllerManagerArgs
		gens["kube-scheduler"] = SchedulerArgs
		gens["registry"] = RegistryArgs
		gens["etcd"] = func(n Node) ([]string, error) { return EtcdArgs(n, ClusterStateNew) }
	}
	for name, gen := range gens {
		args, err := gen(n)
		if err != nil {
			return artifacts{}, err
		}
		a.args[name] = args
	}
	return a, nil
}
