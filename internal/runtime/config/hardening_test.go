package config

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// TestTLSCipherSuites: every suite is one Go (which every component is
// built with) knows as secure, and each serving component is given them.
func TestTLSCipherSuites(t *testing.T) {
	secure := map[string]bool{}
	for _, s := range tls.CipherSuites() {
		secure[s.Name] = true
	}
	for _, name := range tlsCipherSuites {
		if strings.HasSuffix(name, "_POLY1305") {
			name += "_SHA256" // Go's spelling of the same suite
		}
		if !secure[name] {
			t.Errorf("%s is not among Go's secure cipher suites", name)
		}
	}
	m := testMaster()
	for comp, gen := range map[string]func(Node) ([]string, error){"kube-apiserver": APIServerArgs,
		"kube-controller-manager": ControllerManagerArgs, "kube-scheduler": SchedulerArgs} {
		args, err := gen(m)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(args, "--tls-min-version=VersionTLS12") || !slices.ContainsFunc(args, func(a string) bool {
			return strings.HasPrefix(a, "--tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,")
		}) {
			t.Errorf("%s: no explicit TLS version and suites in %q", comp, args)
		}
	}
	etcd, err := EtcdArgs(m, ClusterStateNew)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(etcd, "--tls-min-version=TLS1.2") || !slices.ContainsFunc(etcd, func(a string) bool {
		return strings.HasPrefix(a, "--cipher-suites=")
	}) {
		t.Errorf("etcd: no explicit TLS version and suites in %q", etcd)
	}
	kubelet, err := KubeletConfig(m)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(kubelet), "tlsMinVersion: VersionTLS12") || !strings.Contains(string(kubelet), "- TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305\n") {
		t.Errorf("kubelet config has no explicit TLS version and suites:\n%s", kubelet)
	}
}

// TestDefaultHosts: containerd's fallback for every other registry names a
// server (left empty, containerd would put the image's own registry there
// with every capability) that may neither resolve nor pull.
func TestDefaultHosts(t *testing.T) {
	data, err := DefaultHosts(testWorker())
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Server       string   `toml:"server"`
		Capabilities []string `toml:"capabilities"`
	}
	if _, err := toml.Decode(string(data), &h); err != nil {
		t.Fatal(err)
	}
	if h.Server != "https://"+RegistryAddr || len(h.Capabilities) == 0 ||
		slices.Contains(h.Capabilities, "pull") || slices.Contains(h.Capabilities, "resolve") {
		t.Errorf("default hosts %+v: a stray image could be pulled", h)
	}
}
