package node

import (
	"net"
	"path/filepath"
	"testing"

	"github.com/opengravity/gravity/internal/runtime/config"
)

// Documentation addresses (RFC 5737) fill in configuration only: no test
// connects to them.
var (
	masterIP  = net.ParseIP("192.0.2.10").To4()
	master2IP = net.ParseIP("192.0.2.11").To4()
	workerIP  = net.ParseIP("192.0.2.20").To4()
)

// inDir points every directory of n into dir, so that root "/" writes
// only under the test's scratch directory.
func inDir(n config.Node, dir string) config.Node {
	n.StateDir = filepath.Join(dir, "state")
	n.RunDir = filepath.Join(dir, "run")
	n.LogDir = filepath.Join(dir, "log")
	n.BinDir = filepath.Join(dir, "bin")
	return n
}

func testMaster(t *testing.T) config.Node {
	t.Helper()
	return inDir(config.Node{
		IP: masterIP, Hostname: "node-1", Roles: []string{config.RoleMaster, config.RoleNode},
		ClusterName: "example", MasterIPs: []net.IP{masterIP, master2IP}, NodePodCIDR: "10.244.1.0/24",
	}, t.TempDir())
}

func testWorker(t *testing.T) config.Node {
	t.Helper()
	return inDir(config.Node{
		IP: workerIP, Hostname: "node-3", Roles: []string{config.RoleNode},
		ClusterName: "example", MasterIPs: []net.IP{masterIP, master2IP}, NodePodCIDR: "10.244.3.0/24",
	}, t.TempDir())
}
