// Package install is `gravity install`: the installer (operation
// controller) that plans an install, waits for the install agents and runs
// the plan's phases, each on the node it belongs to. The plan (package
// plan) is persisted before anything runs, so an interrupted install
// resumes or rolls back from it.
package install

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/runtime/config"
)

// Config is an install operation's parameters, fixed when it is planned and
// persisted beside the plan; every phase reads what it needs from it.
type Config struct {
	OperationID string `json:"operationID"`
	ClusterName string `json:"clusterName"`
	AppName     string `json:"appName"`
	AppVersion  string `json:"appVersion"`
	AppPackage  string `json:"appPackage"`  // "gravitational.io/cluster-image:0.0.1"
	BaseVersion string `json:"baseVersion"` // gravity version of the runtime package
	StateDir    string `json:"stateDir"`
	Token       string `json:"token"`
	// TokenExpires is when Token stops admitting agents and nodes; zero:
	// never (--token-ttl).
	TokenExpires  time.Time `json:"tokenExpires,omitzero"`
	CloudProvider string    `json:"cloudProvider"`
	PodCIDR       string    `json:"podCIDR"`
	ServiceCIDR   string    `json:"serviceCIDR"`
	DNSUpstreams  []string  `json:"dnsUpstreams,omitempty"`
	Flavor        string    `json:"flavor,omitempty"`
	SkipChecks    []string  `json:"skipChecks,omitempty"`
	Nodes         []Node    `json:"nodes"`
	Created       time.Time `json:"created"`
	// ImageDir is the unpacked cluster image install was started from;
	// only /init reads it.
	ImageDir string `json:"imageDir"`
	// InstallerAddr is where agents connect (host:port).
	InstallerAddr string `json:"installerAddr"`
	// PauseImage is the sandbox image of every pod, pinned by digest
	// (name:tag@sha256:…) from the cluster image's own record of it.
	PauseImage string `json:"pauseImage,omitempty"`
}

// Node is one node of the install.
type Node struct {
	IP       string `json:"ip"` // advertise address; also the node's name
	Hostname string `json:"hostname"`
	Role     string `json:"role"` // node profile name, e.g. "node"
	Master   bool   `json:"master"`
	// PodSubnet is this node's share of the pod network.
	PodSubnet string `json:"podSubnet"`
}

// Paths of the installer's own state under the state dir.
func (c Config) localDir() string       { return filepath.Join(c.StateDir, "local") }
func (c Config) configPath() string     { return filepath.Join(c.localDir(), "operation.json") }
func (c Config) planPath() string       { return filepath.Join(c.localDir(), "plan.json") }
func (c Config) PKIDir() string         { return filepath.Join(c.localDir(), "pki") }
func (c Config) PackagesDir() string    { return filepath.Join(c.localDir(), "packages") }
func (c Config) nodeConfigPath() string { return filepath.Join(c.StateDir, "config", "node.yaml") }

// PlanStore is where the plan is kept on this node's disk.
func (c Config) PlanStore() plan.FileStore { return plan.FileStore{Path: c.planPath()} }

// RuntimeNode is the runtime configuration of node nd.
func (c Config) RuntimeNode(nd Node) (config.Node, error) {
	ip := net.ParseIP(nd.IP)
	if ip == nil {
		return config.Node{}, fmt.Errorf("node %q: not an IP address", nd.IP)
	}
	roles := []string{config.RoleNode}
	if nd.Master {
		roles = []string{config.RoleMaster, config.RoleNode}
	}
	var masters []net.IP
	for _, m := range c.Nodes {
		if m.Master {
			masters = append(masters, net.ParseIP(m.IP))
		}
	}
	n := config.Node{IP: ip, Hostname: nd.Hostname, Roles: roles, ClusterName: c.ClusterName, MasterIPs: masters,
		PodCIDR: c.PodCIDR, NodePodCIDR: nd.PodSubnet, ServiceCIDR: c.ServiceCIDR, DNSUpstreams: c.DNSUpstreams,
		StateDir: c.StateDir, PauseImage: c.PauseImage}
	if c.BaseVersion != "" {
		n.BinDir = config.VersionBinDir(c.BaseVersion)
	}
	return n.WithDefaults()
}

// RuntimeNodeOf is the runtime configuration of the node at ip.
func (c Config) RuntimeNodeOf(ip string) (config.Node, error) {
	nd, err := c.Node(ip)
	if err != nil {
		return config.Node{}, err
	}
	return c.RuntimeNode(nd)
}

// Node returns the node with advertise address ip.
func (c Config) Node(ip string) (Node, error) {
	i := slices.IndexFunc(c.Nodes, func(n Node) bool { return n.IP == ip })
	if i < 0 {
		return Node{}, fmt.Errorf("node %s is not part of operation %s", ip, c.OperationID)
	}
	return c.Nodes[i], nil
}

// LoadConfig reads the operation config persisted under stateDir.
func LoadConfig(stateDir string) (Config, error) {
	c := Config{StateDir: stateDir}
	data, err := os.ReadFile(c.configPath())
	if err != nil {
		if os.IsNotExist(err) {
			return c, fmt.Errorf("%w: no install operation in %s", plan.ErrNoPlan, stateDir)
		}
		return c, err
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%s: %w", c.configPath(), err)
	}
	return c, nil
}

func (c Config) save() error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return plan.WriteFileAtomic(c.configPath(), data, 0o600)
}

// randomHex returns n random bytes in hex: operation ids and tokens.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}
