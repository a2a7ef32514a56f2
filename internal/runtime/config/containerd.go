package config

import (
	"bytes"
	"fmt"
	"net"
	"path/filepath"

	"github.com/BurntSushi/toml"

	"github.com/opengravity/gravity/internal/pki"
)

// ContainerdConfig is containerd v2's config.toml (version 3) for node n.
// Every path containerd would otherwise take from the host (/var/lib,
// /run, /opt/containerd, /var/run/nri) is under the node's directories, and
// cgroups are cgroupfs as in kubelet.
func ContainerdConfig(n Node) ([]byte, error) {
	n, err := n.WithDefaults()
	if err != nil {
		return nil, err
	}
	p := n.Paths()
	plugins := map[string]any{
		"io.containerd.cri.v1.images": map[string]any{
			"snapshotter":   n.Snapshotter,
			"pinned_images": map[string]string{"sandbox": n.PauseImage},
			"registry":      map[string]string{"config_path": p.ContainerdHosts},
		},
		"io.containerd.cri.v1.runtime": map[string]any{
			// Raising a process's OOM score needs CAP_SYS_RESOURCE, which
			// containers (and these machines) may lack.
			"restrict_oom_score_adj":       true,
			"netns_mounts_under_state_dir": true,
			"containerd": map[string]any{
				"default_runtime_name": "runc",
				"runtimes": map[string]any{"runc": map[string]any{
					"runtime_type": "io.containerd.runc.v2",
					"options": map[string]any{
						"BinaryName":    p.Bin("runc"),
						"SystemdCgroup": false,
					},
				}},
			},
			"cni": map[string]any{
				"bin_dirs":     []string{p.CNIBin},
				"conf_dir":     p.CNIConf,
				"max_conf_num": 1,
			},
		},
		"io.containerd.grpc.v1.cri": map[string]any{
			"disable_tcp_service":   true,
			"stream_server_address": "127.0.0.1",
			"stream_server_port":    "0",
		},
		// Pulls that bypass CRI (ctr, the supervisor) find the registry
		// the same way.
		"io.containerd.transfer.v1.local":        map[string]string{"config_path": p.ContainerdHosts},
		"io.containerd.internal.v1.opt":          map[string]string{"path": p.ContainerdOpt},
		"io.containerd.image-verifier.v1.bindir": map[string]string{"bin_dir": filepath.Join(p.ContainerdOpt, "image-verifier", "bin")},
		// NRI would listen on /var/run/nri/nri.sock, shared by every
		// containerd on the host; nothing here uses it.
		"io.containerd.nri.v1.nri": map[string]any{"disable": true},
	}
	cfg := map[string]any{
		"version": 3,
		"root":    p.ContainerdRoot,
		"state":   p.ContainerdState,
		"grpc":    map[string]any{"address": p.ContainerdSocket},
		"ttrpc":   map[string]any{"address": p.ContainerdSocket + ".ttrpc"},
		"plugins": plugins,
	}
	return encodeTOML("containerd config", cfg)
}

func encodeTOML(what string, v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := toml.NewEncoder(&buf)
	enc.Indent = ""
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return buf.Bytes(), nil
}

// RegistryHostsPath is where containerd looks for registry.local:5000's
// hosts.toml, relative to Paths.ContainerdHosts.
const RegistryHostsPath = RegistryAddr + "/hosts.toml"

// RegistryHosts is containerd's hosts.toml for registry.local:5000: every
// master's registry, tried in order, over TLS verified against the cluster
// CA and with the node's registry client certificate (never skip_verify),
// a master's own registry first.
// The server entry is containerd's last resort, the name itself.
func RegistryHosts(n Node) ([]byte, error) {
	n, err := n.WithDefaults()
	if err != nil {
		return nil, err
	}
	p := n.Paths()
	ca := p.Cert(pki.ClusterCAName)
	client := [][]string{{p.Cert(pki.RegistryClient), p.Key(pki.RegistryClient)}}
	var buf bytes.Buffer
	// Written by hand: containerd tries the hosts in file order, and a map
	// would be sorted.
	fmt.Fprintf(&buf, "server = %s\nca = %s\nclient = %s\n", tomlValue("https://"+RegistryAddr), tomlValue(ca), tomlValue(client))
	for _, ip := range registryOrder(n) {
		fmt.Fprintf(&buf, "\n[host.%s]\ncapabilities = %s\nca = %s\nclient = %s\n",
			tomlValue(httpsURL(ip, RegistryPort)), tomlValue([]string{"pull", "resolve"}), tomlValue(ca), tomlValue(client))
	}
	return buf.Bytes(), nil
}

// DefaultHostsPath is containerd's hosts.toml for every registry that has
// none of its own, relative to Paths.ContainerdHosts.
const DefaultHostsPath = "_default/hosts.toml"

// DefaultHosts is that file: an air-gapped cluster pulls from no registry
// but registry.local:5000. Without it containerd would try the image's own
// registry (docker.io for a bare name) and hang on DNS or a firewall;
// with it, the one host left may neither resolve nor pull, so a pull of a
// stray image fails at once ("no resolve hosts") and kubelet's event names
// the image. The server must be set: left empty, containerd puts the
// image's registry in its place with every capability. It is the cluster
// registry's name, not a redirect: nothing is looked up there.
func DefaultHosts(n Node) ([]byte, error) {
	return []byte("# Only registry.local:5000 serves images to this cluster: no other registry is tried.\n" +
		"server = " + tomlValue("https://"+RegistryAddr) + "\ncapabilities = " + tomlValue([]string{"push"}) + "\n"), nil
}

// tomlValue renders one TOML value with the encoder's quoting.
func tomlValue(v any) string {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(map[string]any{"v": v}); err != nil {
		panic(fmt.Sprintf("toml value %v: %v", v, err)) // strings and string slices always encode
	}
	return string(bytes.TrimSuffix(bytes.TrimPrefix(buf.Bytes(), []byte("v = ")), []byte("\n")))
}

// registryOrder is the masters with n itself first when it is one: its own
// registry is the one reachable whenever the node is up.
func registryOrder(n Node) []net.IP {
	out := []net.IP{}
	if n.IsMaster() {
		out = append(out, n.IP)
	}
	for _, ip := range n.MasterIPs {
		if !ip.Equal(n.IP) {
			out = append(out, ip)
		}
	}
	return out
}
