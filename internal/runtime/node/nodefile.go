package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/opengravity/gravity/internal/runtime/config"
)

// nodeFile is the YAML form of config.Node: the names are camelCase, IPs
// are strings, and every field but ip, clusterName, masterIPs and
// nodePodCIDR may be left out for its default.
type nodeFile struct {
	Name                 string   `yaml:"name,omitempty"`
	IP                   string   `yaml:"ip"`
	Hostname             string   `yaml:"hostname,omitempty"`
	Roles                []string `yaml:"roles,omitempty"`
	ClusterName          string   `yaml:"clusterName"`
	MasterIPs            []string `yaml:"masterIPs"`
	PodCIDR              string   `yaml:"podCIDR,omitempty"`
	NodePodCIDR          string   `yaml:"nodePodCIDR"`
	ServiceCIDR          string   `yaml:"serviceCIDR,omitempty"`
	ClusterDomain        string   `yaml:"clusterDomain,omitempty"`
	DNSUpstreams         []string `yaml:"dnsUpstreams,omitempty"`
	StateDir             string   `yaml:"stateDir,omitempty"`
	RunDir               string   `yaml:"runDir,omitempty"`
	LogDir               string   `yaml:"logDir,omitempty"`
	BinDir               string   `yaml:"binDir,omitempty"`
	CgroupRoot           string   `yaml:"cgroupRoot,omitempty"`
	Snapshotter          string   `yaml:"snapshotter,omitempty"`
	PauseImage           string   `yaml:"pauseImage,omitempty"`
	ModifyKernelDefaults bool     `yaml:"modifyKernelDefaults,omitempty"`
}

// LoadNode reads a node config file; see ParseNode.
func LoadNode(path string) (config.Node, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return config.Node{}, fmt.Errorf("node config: %w", err)
	}
	n, err := ParseNode(data)
	if err != nil {
		return config.Node{}, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// ParseNode decodes a node config YAML document. Unknown and duplicate
// fields are errors, and names are case-sensitive: a misspelt field silently taking its default would
// configure a different cluster than the one asked for. The node is
// validated but returned without defaults, so that a caller can tell an
// unset Snapshotter (to be detected) from a chosen one.
func ParseNode(data []byte) (config.Node, error) {
	f, err := decodeNodeFile(data)
	if err != nil {
		return config.Node{}, fmt.Errorf("node config: %w", err)
	}
	n, err := f.node()
	if err != nil {
		return config.Node{}, fmt.Errorf("node config: %w", err)
	}
	if _, err := n.WithDefaults(); err != nil {
		return config.Node{}, err
	}
	return n, nil
}

func (f nodeFile) node() (config.Node, error) {
	ip, err := parseIP("ip", f.IP)
	if err != nil {
		return config.Node{}, err
	}
	var masters []net.IP
	for _, s := range f.MasterIPs {
		m, err := parseIP("masterIPs", s)
		if err != nil {
			return config.Node{}, err
		}
		masters = append(masters, m)
	}
	return config.Node{
		Name: f.Name, IP: ip, Hostname: f.Hostname, Roles: f.Roles, ClusterName: f.ClusterName,
		MasterIPs: masters, PodCIDR: f.PodCIDR, NodePodCIDR: f.NodePodCIDR, ServiceCIDR: f.ServiceCIDR,
		ClusterDomain: f.ClusterDomain, DNSUpstreams: f.DNSUpstreams,
		StateDir: f.StateDir, RunDir: f.RunDir, LogDir: f.LogDir, BinDir: f.BinDir,
		CgroupRoot: f.CgroupRoot, Snapshotter: f.Snapshotter, PauseImage: f.PauseImage,
		ModifyKernelDefaults: f.ModifyKernelDefaults,
	}, nil
}

func parseIP(field, s string) (net.IP, error) {
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, fmt.Errorf("%s: %q is not an IP address", field, s)
	}
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	return ip, nil
}

// decodeNodeFile decodes exactly one YAML document.
func decodeNodeFile(data []byte) (nodeFile, error) {
	var f nodeFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return f, errors.New("empty document")
		}
		return f, err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return f, errors.New("more than one YAML document")
	}
	return f, nil
}

// FormatNode is ParseNode's inverse: the YAML node config file for n, as
// install writes it for `gravity runtime start --config`.
func FormatNode(n config.Node) ([]byte, error) {
	f := nodeFile{
		Name: n.Name, IP: n.IP.String(), Hostname: n.Hostname, Roles: n.Roles, ClusterName: n.ClusterName,
		PodCIDR: n.PodCIDR, NodePodCIDR: n.NodePodCIDR, ServiceCIDR: n.ServiceCIDR,
		ClusterDomain: n.ClusterDomain, DNSUpstreams: n.DNSUpstreams,
		StateDir: n.StateDir, RunDir: n.RunDir, LogDir: n.LogDir, BinDir: n.BinDir,
		CgroupRoot: n.CgroupRoot, Snapshotter: n.Snapshotter, PauseImage: n.PauseImage,
		ModifyKernelDefaults: n.ModifyKernelDefaults,
	}
	for _, m := range n.MasterIPs {
		f.MasterIPs = append(f.MasterIPs, m.String())
	}
	data, err := yaml.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("node config: %w", err)
	}
	if _, err := ParseNode(data); err != nil {
		return nil, err
	}
	return data, nil
}
