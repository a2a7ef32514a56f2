package config

import (
	"fmt"
	"strings"

	"github.com/opengravity/gravity/internal/pki"
)

// RegistryConfig is the distribution registry's config.yml on master n: it
// serves the filesystem under StateDir on the node IP only, over TLS, and
// only to clients with a certificate from the cluster CA. There is no
// token auth and no proxy section, so it never pulls through from
// anywhere.
func RegistryConfig(n Node) ([]byte, error) {
	n, err := master(n, "registry")
	if err != nil {
		return nil, err
	}
	p := n.Paths()
	cfg := map[string]any{
		"version": "0.1",
		"log":     map[string]any{"level": "info", "formatter": "text", "accesslog": map[string]bool{"disabled": false}},
		"storage": map[string]any{
			"filesystem": map[string]string{"rootdirectory": p.RegistryStorage},
			"delete":     map[string]bool{"enabled": false},
		},
		"http": map[string]any{
			"addr": hostPort(n.IP, RegistryPort),
			"net":  "tcp",
			"tls": map[string]any{
				"certificate": p.Cert(pki.RegistryServer),
				"key":         p.Key(pki.RegistryServer),
				"clientcas":   []string{p.Cert(pki.ClusterCAName)},
				"minimumtls":  "tls1.2",
			},
			"headers": map[string][]string{"X-Content-Type-Options": {"nosniff"}},
		},
		"health": map[string]any{
			"storagedriver": map[string]any{"enabled": true, "interval": "10s", "threshold": 3},
		},
	}
	return marshalYAML("registry config", cfg)
}

// RegistryArgs are the registry's flags.
func RegistryArgs(n Node) ([]string, error) {
	n, err := master(n, "registry")
	if err != nil {
		return nil, err
	}
	return []string{"serve", n.Paths().RegistryConfig}, nil
}

// Corefile is CoreDNS's configuration (the data of its ConfigMap): the
// cluster zone from the API, registry.local as every master, and a forward
// to DNSUpstreams only when there are any. No prometheus listener: it would
// serve metrics to anyone without authentication. Without upstreams, names outside
// the cluster get NXDOMAIN: nothing is asked outside.
func Corefile(n Node) ([]byte, error) {
	n, err := n.WithDefaults()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString(".:53 {\n    errors\n    health {\n        lameduck 5s\n    }\n    ready\n")
	fmt.Fprintf(&b, "    kubernetes %s in-addr.arpa ip6.arpa {\n        pods insecure\n        fallthrough in-addr.arpa ip6.arpa\n        ttl 30\n    }\n",
		n.ClusterDomain)
	b.WriteString("    hosts {\n")
	for _, ip := range n.MasterIPs {
		fmt.Fprintf(&b, "        %s %s\n", ip, pki.RegistryHost)
	}
	b.WriteString("        fallthrough\n    }\n")
	if len(n.DNSUpstreams) > 0 {
		fmt.Fprintf(&b, "    forward . %s {\n        max_concurrent 1000\n    }\n", strings.Join(n.DNSUpstreams, " "))
	}
	b.WriteString("    cache 30\n    loop\n    reload\n    loadbalance\n}\n")
	return []byte(b.String()), nil
}
