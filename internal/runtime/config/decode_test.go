package config

import (
	"bytes"
	"encoding/json"
	"github.com/opengravity/gravity/internal/version"
	"net"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	kubeproxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"
)

// TestKubeletConfigDecodes decodes the kubelet configuration strictly into
// kubelet's own type: a misspelt field fails here, not on a node.
func TestKubeletConfigDecodes(t *testing.T) {
	for _, modify := range []bool{false, true} {
		n := testWorker()
		n.ModifyKernelDefaults = modify
		data, err := KubeletConfig(n)
		if err != nil {
			t.Fatal(err)
		}
		var cfg kubeletv1beta1.KubeletConfiguration
		if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
			t.Fatalf("kubelet config does not decode strictly: %v\n%s", err, data)
		}
		checks := []struct {
			name string
			ok   bool
		}{
			{"kind", cfg.Kind == "KubeletConfiguration" && cfg.APIVersion == "kubelet.config.k8s.io/v1beta1"},
			{"cgroupfs", cfg.CgroupDriver == "cgroupfs"},
			{"cgroupRoot", cfg.CgroupRoot == "/gravity-192.0.2.20"},
			{"failCgroupV1", cfg.FailCgroupV1 != nil && !*cfg.FailCgroupV1},
			{"failSwapOn", cfg.FailSwapOn != nil && !*cfg.FailSwapOn},
			{"protectKernelDefaults", cfg.ProtectKernelDefaults == !modify},
			{"clusterDNS", len(cfg.ClusterDNS) == 1 && cfg.ClusterDNS[0] == "10.100.0.10"},
			{"clusterDomain", cfg.ClusterDomain == "cluster.local"},
			{"resolvConf", cfg.ResolverConfig != nil && *cfg.ResolverConfig == "/var/lib/gravity/config/resolv.conf"},
			{"anonymous off", cfg.Authentication.Anonymous.Enabled != nil && !*cfg.Authentication.Anonymous.Enabled},
			{"webhook authn", cfg.Authentication.Webhook.Enabled != nil && *cfg.Authentication.Webhook.Enabled},
			{"client CA", cfg.Authentication.X509.ClientCAFile == "/var/lib/gravity/secrets/ca.crt"},
			{"webhook authz", cfg.Authorization.Mode == kubeletv1beta1.KubeletAuthorizationModeWebhook},
			{"read-only port off", cfg.ReadOnlyPort == 0},
			// Client and serving certificates rotate through CSRs.
			{"rotation", cfg.RotateCertificates && cfg.ServerTLSBootstrap},
			{"serving cert", cfg.TLSCertFile == "/var/lib/gravity/secrets/kubelet.crt"},
			{"podCIDR", cfg.PodCIDR == "10.244.3.0/24"},
			{"runtime", cfg.ContainerRuntimeEndpoint == "unix:///run/gravity/containerd/containerd.sock"},
			{"registerNode", cfg.RegisterNode != nil && *cfg.RegisterNode},
			{"no static pods", cfg.StaticPodPath == ""},
			{"address", cfg.Address == "192.0.2.20"},
			{"healthz on loopback", cfg.HealthzBindAddress == "127.0.0.1"},
		}
		for _, c := range checks {
			if !c.ok {
				t.Errorf("kubelet config (modify=%v): %s wrong:\n%s", modify, c.name, data)
			}
		}
	}
}

// TestKubeProxyConfigDecodes decodes into kube-proxy's type and checks that
// nothing host-wide is changed: zero conntrack values mean "leave alone".
func TestKubeProxyConfigDecodes(t *testing.T) {
	data, err := KubeProxyConfig(testWorker())
	if err != nil {
		t.Fatal(err)
	}
	var cfg kubeproxyv1alpha1.KubeProxyConfiguration
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		t.Fatalf("kube-proxy config does not decode strictly: %v\n%s", err, data)
	}
	ct := cfg.Conntrack
	checks := []struct {
		name string
		ok   bool
	}{
		{"mode", cfg.Mode == "iptables"},
		{"clusterCIDR", cfg.ClusterCIDR == "10.244.0.0/16"},
		{"bindAddress", cfg.BindAddress == "192.0.2.20"},
		{"metrics on loopback", strings.HasPrefix(cfg.MetricsBindAddress, "127.0.0.1:")},
		{"healthz on loopback", strings.HasPrefix(cfg.HealthzBindAddress, "127.0.0.1:")},
		{"hostname", cfg.HostnameOverride == "192.0.2.20"},
		{"maxPerCore 0", ct.MaxPerCore != nil && *ct.MaxPerCore == 0},
		{"min 0", ct.Min != nil && *ct.Min == 0},
		{"established 0", ct.TCPEstablishedTimeout != nil && ct.TCPEstablishedTimeout.Duration == 0},
		{"close-wait 0", ct.TCPCloseWaitTimeout != nil && ct.TCPCloseWaitTimeout.Duration == 0},
		{"udp 0", ct.UDPTimeout.Duration == 0 && ct.UDPStreamTimeout.Duration == 0 && !ct.TCPBeLiberal},
		{"no route_localnet", cfg.IPTables.LocalhostNodePorts != nil && !*cfg.IPTables.LocalhostNodePorts},
		{"kubeconfig", cfg.ClientConnection.Kubeconfig == "/var/lib/gravity/secrets/kubeconfig/kube-proxy.conf"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("kube-proxy config: %s wrong:\n%s", c.name, data)
		}
	}
}

func TestAdmissionConfigDecodes(t *testing.T) {
	data, err := AdmissionConfig(testMaster())
	if err != nil {
		t.Fatal(err)
	}
	var cfg apiserverv1.AdmissionConfiguration
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		t.Fatalf("admission config: %v\n%s", err, data)
	}
	if len(cfg.Plugins) != 2 || cfg.Plugins[0].Name != "EventRateLimit" || cfg.Plugins[1].Name != "PodSecurity" ||
		cfg.Plugins[1].Configuration == nil {
		t.Fatalf("want EventRateLimit and PodSecurity, got %+v", cfg.Plugins)
	}
	var erl struct {
		APIVersion, Kind string
		Limits           []struct {
			Type       string
			QPS, Burst int
		}
	}
	if err := json.Unmarshal(cfg.Plugins[0].Configuration.Raw, &erl); err != nil || erl.Kind != "Configuration" ||
		erl.APIVersion != "eventratelimit.admission.k8s.io/v1alpha1" || len(erl.Limits) != 2 || erl.Limits[0].QPS <= 0 {
		t.Errorf("event rate limit config %+v (%v)", erl, err)
	}
	var ps struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Defaults   map[string]string `json:"defaults"`
		Exemptions struct {
			Usernames, RuntimeClasses, Namespaces []string
		} `json:"exemptions"`
	}
	if err := json.Unmarshal(cfg.Plugins[1].Configuration.Raw, &ps); err != nil {
		t.Fatal(err)
	}
	if ps.Kind != "PodSecurityConfiguration" || ps.APIVersion != "pod-security.admission.config.k8s.io/v1" {
		t.Errorf("pod security config kind %s/%s", ps.APIVersion, ps.Kind)
	}
	if ps.Defaults["enforce"] != "baseline" || ps.Defaults["warn"] != "restricted" || ps.Defaults["audit"] != "restricted" {
		t.Errorf("pod security levels %v", ps.Defaults)
	}
}

// containerdConfig is the part of containerd's config the test checks; the
// decoder reports every key it did not map, so the whole file is covered.
type containerdConfig struct {
	Version int
	Root    string
	State   string
	GRPC    struct{ Address string } `toml:"grpc"`
	TTRPC   struct{ Address string } `toml:"ttrpc"`
	Plugins map[string]toml.Primitive
}

func TestContainerdConfigDecodes(t *testing.T) {
	n := testWorker()
	n.Snapshotter = SnapshotterNative
	data, err := ContainerdConfig(n)
	if err != nil {
		t.Fatal(err)
	}
	var cfg containerdConfig
	md, err := toml.Decode(string(data), &cfg)
	if err != nil {
		t.Fatalf("containerd config: %v\n%s", err, data)
	}
	if cfg.Version != 3 || cfg.Root != "/var/lib/gravity/containerd/root" || cfg.State != "/run/gravity/containerd/state" ||
		cfg.GRPC.Address != "/run/gravity/containerd/containerd.sock" {
		t.Errorf("containerd top level wrong: %+v", cfg)
	}
	var images struct {
		Snapshotter  string
		PinnedImages map[string]string `toml:"pinned_images"`
		Registry     struct {
			ConfigPath string `toml:"config_path"`
		}
	}
	var rt struct {
		RestrictOOMScoreAdj bool `toml:"restrict_oom_score_adj"`
		Containerd          struct {
			Runtimes map[string]struct {
				RuntimeType string `toml:"runtime_type"`
				Options     map[string]any
			}
		}
		CNI struct {
			BinDirs []string `toml:"bin_dirs"`
			ConfDir string   `toml:"conf_dir"`
		} `toml:"cni"`
	}
	for key, v := range map[string]any{"io.containerd.cri.v1.images": &images, "io.containerd.cri.v1.runtime": &rt} {
		if err := md.PrimitiveDecode(cfg.Plugins[key], v); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
	}
	runc := rt.Containerd.Runtimes["runc"]
	checks := []struct {
		name string
		ok   bool
	}{
		{"snapshotter", images.Snapshotter == "native"},
		{"sandbox", images.PinnedImages["sandbox"] == "registry.local:5000/gravitational/pause:0.1.0"},
		{"config_path", images.Registry.ConfigPath == "/var/lib/gravity/containerd/certs.d"},
		{"restrict_oom_score_adj", rt.RestrictOOMScoreAdj},
		{"runc type", runc.RuntimeType == "io.containerd.runc.v2"},
		{"runc binary", runc.Options["BinaryName"] == VersionBinDir(version.Version)+"/runc"},
		{"cgroupfs", runc.Options["SystemdCgroup"] == false},
		{"cni bin", len(rt.CNI.BinDirs) == 1 && rt.CNI.BinDirs[0] == VersionBinDir(version.Version)},
		{"cni conf", rt.CNI.ConfDir == "/var/lib/gravity/cni/net.d"},
		{"opt", bytes.Contains(data, []byte(`path = "/var/lib/gravity/containerd/opt"`))},
		{"nri off", bytes.Contains(data, []byte("[plugins.\"io.containerd.nri.v1.nri\"]\ndisable = true"))},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("containerd config: %s wrong:\n%s", c.name, data)
		}
	}
}

// TestRegistryHostsDecodes reads hosts.toml the way containerd does: host
// tables in file order, each with the cluster CA and a client pair.
func TestRegistryHostsDecodes(t *testing.T) {
	for _, tc := range []struct {
		node  Node
		order []string
	}{
		{testMaster(), []string{"https://192.0.2.10:5000", "https://192.0.2.11:5000"}},
		{func() Node { n := testMaster(); n.IP, n.Name = master2IP, ""; return n }(),
			[]string{"https://192.0.2.11:5000", "https://192.0.2.10:5000"}},
		{testWorker(), []string{"https://192.0.2.10:5000", "https://192.0.2.11:5000"}},
	} {
		data, err := RegistryHosts(tc.node)
		if err != nil {
			t.Fatal(err)
		}
		type host struct {
			Capabilities []string
			CA           string     `toml:"ca"`
			Client       [][]string `toml:"client"`
			SkipVerify   *bool      `toml:"skip_verify"`
		}
		var cfg struct {
			Server string
			host
			Host map[string]host
		}
		md, err := toml.Decode(string(data), &cfg)
		if err != nil {
			t.Fatalf("hosts.toml: %v\n%s", err, data)
		}
		if und := md.Undecoded(); len(und) > 0 {
			t.Errorf("unexpected keys %v", und)
		}
		if cfg.Server != "https://registry.local:5000" {
			t.Errorf("server %q", cfg.Server)
		}
		var order []string
		for _, k := range md.Keys() {
			if len(k) == 2 && k[0] == "host" {
				order = append(order, k[1])
			}
		}
		if strings.Join(order, " ") != strings.Join(tc.order, " ") {
			t.Errorf("host order %v, want %v", order, tc.order)
		}
		for name, h := range cfg.Host {
			if h.SkipVerify != nil || h.CA != "/var/lib/gravity/secrets/ca.crt" || len(h.Client) != 1 || len(h.Client[0]) != 2 ||
				h.Client[0][0] != "/var/lib/gravity/secrets/registry-client.crt" ||
				strings.Join(h.Capabilities, ",") != "pull,resolve" {
				t.Errorf("host %s: %+v", name, h)
			}
		}
	}
}

func TestCNIConfig(t *testing.T) {
	data, err := CNIConfig(testWorker())
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		CNIVersion string `json:"cniVersion"`
		Name       string
		Plugins    []struct {
			Type        string
			Bridge      string
			IsGateway   bool `json:"isGateway"`
			IPMasq      bool `json:"ipMasq"`
			HairpinMode bool `json:"hairpinMode"`
			IPAM        struct {
				Type    string
				DataDir string `json:"dataDir"`
				Ranges  [][]struct{ Subnet, Gateway string }
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&conf); err != nil {
		t.Fatalf("conflist: %v\n%s", err, data)
	}
	if len(conf.Plugins) != 2 || conf.Plugins[0].Type != "bridge" || conf.Plugins[1].Type != "portmap" {
		t.Fatalf("plugins: %+v", conf.Plugins)
	}
	br := conf.Plugins[0]
	if !br.IsGateway || br.IPMasq || !br.HairpinMode || br.IPAM.Type != "host-local" ||
		br.IPAM.DataDir != "/var/lib/gravity/cni/networks" || len(br.IPAM.Ranges) != 1 ||
		br.IPAM.Ranges[0][0].Subnet != "10.244.3.0/24" || br.IPAM.Ranges[0][0].Gateway != "10.244.3.1" {
		t.Errorf("bridge: %+v", br)
	}
}

func TestRegistryConfigDecodes(t *testing.T) {
	data, err := RegistryConfig(testMaster())
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Version string `json:"version"`
		Storage struct {
			Filesystem struct {
				RootDirectory string `json:"rootdirectory"`
			} `json:"filesystem"`
		} `json:"storage"`
		HTTP struct {
			Addr         string         `json:"addr"`
			Net          string         `json:"net"`
			RelativeURLs bool           `json:"relativeurls"`
			TLS          map[string]any `json:"tls"`
		} `json:"http"`
		Auth  map[string]any `json:"auth"`
		Proxy map[string]any `json:"proxy"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("registry config: %v\n%s", err, data)
	}
	// Only root reaches the registry itself, on a unix socket; the gate
	// serves the network.
	if cfg.Version != "0.1" || cfg.Storage.Filesystem.RootDirectory != "/var/lib/gravity/registry" ||
		cfg.HTTP.Net != "unix" || cfg.HTTP.Addr != "/run/gravity/registry/registry.sock" || !cfg.HTTP.RelativeURLs ||
		cfg.HTTP.TLS != nil {
		t.Errorf("registry config: %+v", cfg)
	}
	if cfg.Auth != nil || cfg.Proxy != nil {
		t.Errorf("registry config has auth or proxy sections:\n%s", data)
	}
}

func TestResolvConf(t *testing.T) {
	data, err := ResolvConf(testWorker())
	if err != nil {
		t.Fatal(err)
	}
	var servers []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			servers = append(servers, f[1])
		}
	}
	if len(servers) != 1 || servers[0] != "10.100.0.10" {
		t.Errorf("nameservers %v, want only the cluster DNS service", servers)
	}
	if ip := net.ParseIP(servers[0]); ip.IsLoopback() {
		t.Error("loopback nameserver")
	}
}
