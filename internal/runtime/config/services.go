package config

import (
	"fmt"
	"strings"

	"github.com/opengravity/gravity/internal/pki"
)

// RegistryConfig is the distribution registry's config.yml on master n: it
// serves the filesystem under StateDir on a unix socket only root may open
// (Paths.RegistrySocket). The network side is the registry gate's
// (internal/runtime/registrygate), which takes only clients with a
// certificate of the cluster CA and lets only the cluster's own push path
// push. URLs it returns are relative, as the gate's clients know the
// registry by another name. There is no token auth and no proxy section,
// so it never pulls through from anywhere.
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
			"addr":         p.RegistrySocket,
			"net":          "unix",
			"relativeurls": true,
			"headers":      map[string][]string{"X-Content-Type-Options": {"nosniff"}},
		},
		"health": map[string]any{
			"storagedriver": map[string]any{"enabled": true, "interval": "10s", "threshold": 3},
		},
	}
	return marshalYAML("registry config", cfg)
}

// RegistryGateArgs are the gravity runtime subcommand's flags that serve
// the registry on the node's address (`gravity runtime registry-gate`).
func RegistryGateArgs(n Node) ([]string, error) {
	n, err := master(n, "registry gate")
	if err != nil {
		return nil, err
	}
	p := n.Paths()
	return []string{"runtime", RegistryGateCommand, "--addr=" + hostPort(n.IP, RegistryPort), "--socket=" + p.RegistrySocket,
		"--cert=" + p.Cert(pki.RegistryServer), "--key=" + p.Key(pki.RegistryServer), "--client-ca=" + p.Cert(pki.ClusterCAName)}, nil
}

// RegistryGateCommand is the hidden gravity runtime subcommand of the gate.
const RegistryGateCommand = "registry-gate"

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
