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
// its addresses); the pod network agent (podnet) routes to other nodes' pods.
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
