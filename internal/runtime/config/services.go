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

// Corefile is CoreDNS's configuration (the data of its ConfigMap), one
// server block per zone: the cluster zone (and reverse zones) from the API,
// registry.local as every master, and everything else either forwarded to
// DNSUpstreams or, by default, answered NXDOMAIN at once: nothing is asked
// outside the cluster and no query ends in a plugin chain with nothing
// left to try (a SERVFAIL that clients retry). No prometheus listener: it
// would serve metrics to anyone without authentication.
func Corefile(n Node) ([]byte, error) {
	n, err := n.WithDefaults()
	if err != nil {
		return nil, err
	}
	forward := ""
	if len(n.DNSUpstreams) > 0 {
		forward = fmt.Sprintf("    forward . %s {\n        max_concurrent 1000\n    }\n", strings.Join(n.DNSUpstreams, " "))
	}
	var b strings.Builder
	b.WriteString(".:53 {\n    errors\n    health {\n        lameduck 5s\n    }\n    ready\n")
	if forward != "" {
		b.WriteString(forward + "    loop\n")
	} else {
		b.WriteString("    template ANY ANY {\n        rcode NXDOMAIN\n    }\n")
	}
	b.WriteString("    cache 30\n    reload\n}\n")

	zones := n.ClusterDomain + " in-addr.arpa ip6.arpa"
	fmt.Fprintf(&b, "%s:53 in-addr.arpa:53 ip6.arpa:53 {\n    errors\n    kubernetes %s {\n        pods insecure\n", n.ClusterDomain, zones)
	if forward != "" {
		// Addresses outside the cluster are the upstreams' to name.
		b.WriteString("        fallthrough in-addr.arpa ip6.arpa\n")
	}
	b.WriteString("        ttl 30\n    }\n" + forward + "    cache 30\n    loadbalance\n}\n")

	fmt.Fprintf(&b, "%s:53 {\n    errors\n    hosts {\n", pki.RegistryHost)
	for _, ip := range n.MasterIPs {
		fmt.Fprintf(&b, "        %s %s\n", ip, pki.RegistryHost)
	}
	b.WriteString("    }\n    cache 30\n    loadbalance\n}\n")
	return []byte(b.String()), nil
}
