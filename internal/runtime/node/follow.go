package node

import (
	"bytes"
	"net"
	"os"
	"path/filepath"

	"github.com/opengravity/gravity/internal/atomicfile"
	"github.com/opengravity/gravity/internal/runtime/config"
)

// FollowMasters is the pod network agent's OnMasters on node n: it
// rewrites containerd's endpoints for registry.local to the masters the
// cluster has now (containerd reads them at every pull, so no restart).
// The node config keeps the masters it was made with; this node's own
// registry stays first on a master.
func FollowMasters(n config.Node) func([]net.IP) error {
	return func(masters []net.IP) error {
		m := n
		m.MasterIPs = nil
		seen := false
		for _, ip := range masters {
			seen = seen || ip.Equal(n.IP)
			m.MasterIPs = append(m.MasterIPs, ip)
		}
		if n.IsMaster() && !seen {
			m.MasterIPs = append(m.MasterIPs, n.IP)
		}
		data, err := config.RegistryHosts(m)
		if err != nil {
			return err
		}
		path := filepath.Join(m.Paths().ContainerdHosts, config.RegistryHostsPath)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		return atomicfile.WriteFile(path, data, config.FileMode)
	}
}
