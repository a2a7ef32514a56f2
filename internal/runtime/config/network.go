package config

import (
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
)

// CNINetworkName is the pod network's name; BridgeName its bridge.
const (
	CNINetworkName = "gravity"
	BridgeName     = "gravity0"
	// CNIConfFile is the conflist's name under Paths.CNIConf.
	CNIConfFile = "10-gravity.conflist"
)

// CNIConfig is the pod network of node n: a bridge with host-local
// addresses from NodePodCIDR, the bridge as the pods' gateway, no
// masquerading (nothing may leave the cluster, and pod-to-pod traffic keeps
// its addresses), and the routes to other nodes' pod CIDRs from Routes.
// There is no loopback entry: containerd brings up lo in every sandbox
// with the loopback plugin from the bin dir on its own.
func CNIConfig(n Node) ([]byte, error) {
	n, err := n.WithDefaults()
	if err != nil {
		return nil, err
	}
	_, subnet, err := net.ParseCIDR(n.NodePodCIDR)
	if err != nil {
		return nil, fmt.Errorf("cni config: %w", err)
	}
	gw := make(net.IP, net.IPv4len)
	copy(gw, subnet.IP.To4())
	gw[3]++
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       CNINetworkName,
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      BridgeName,
				"isGateway":   true,
				"ipMasq":      false,
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": n.Paths().CNIIPAMData,
					"ranges":  [][]map[string]string{{{"subnet": n.NodePodCIDR, "gateway": gw.String()}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	out, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("cni config: %w", err)
	}
	return append(out, '\n'), nil
}

// CNIConfPath is the conflist's path.
func (p Paths) CNIConfPath() string { return filepath.Join(p.CNIConf, CNIConfFile) }

// Route is one route the node agent programs: pods of another node are
// reached through that node.
type Route struct {
	Dst *net.IPNet
	Via net.IP
}

func (r Route) String() string { return r.Dst.String() + " via " + r.Via.String() }

// Routes are the routes self needs to every other node's pods, in the order
// of nodes. It fails when two nodes claim overlapping pod CIDRs.
func Routes(self Node, nodes []Node) ([]Route, error) {
	var out []Route
	var seen []*net.IPNet
	for _, n := range nodes {
		_, dst, err := net.ParseCIDR(n.NodePodCIDR)
		if err != nil {
			return nil, fmt.Errorf("routes: node %s: NodePodCIDR: %w", n.Name, err)
		}
		if n.IP == nil || n.IP.To4() == nil {
			return nil, fmt.Errorf("routes: node %s: no IPv4 address", n.Name)
		}
		for _, s := range seen {
			if overlaps(s, dst) {
				return nil, fmt.Errorf("routes: node %s: pod CIDR %s overlaps %s", n.Name, dst, s)
			}
		}
		seen = append(seen, dst)
		if n.IP.Equal(self.IP) {
			continue
		}
		out = append(out, Route{Dst: dst, Via: n.IP.To4()})
	}
	return out, nil
}
