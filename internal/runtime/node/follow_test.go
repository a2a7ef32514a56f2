package node

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opengravity/gravity/internal/runtime/config"
)

// A node's registry endpoints follow the masters the cluster has, its own
// registry first on a master.
func TestFollowMasters(t *testing.T) {
	n := worker(t)
	follow := FollowMasters(n)
	path := filepath.Join(n.Paths().ContainerdHosts, config.RegistryHostsPath)
	masters := []net.IP{net.ParseIP("192.0.2.10"), net.ParseIP("192.0.2.12"), net.ParseIP("192.0.2.13")}
	if err := follow(masters); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range masters {
		if !strings.Contains(string(data), "https://"+ip.String()+":5000") {
			t.Errorf("hosts.toml lacks master %s:\n%s", ip, data)
		}
	}
	if err := follow(masters[1:]); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); strings.Contains(string(data), "192.0.2.10:") {
		t.Errorf("a master that left is still listed:\n%s", data)
	}
}
