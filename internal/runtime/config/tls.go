package config

import "strings"

// Every component that serves TLS takes TLS 1.2 at the least and, for 1.2,
// only AEAD cipher suites with forward secrecy (TLS 1.3's are fixed and all
// such). Set explicitly rather than left to each component's defaults,
// which differ between components and releases, and which scanners (the
// CIS benchmark's checks) cannot see. The cluster's keys are ECDSA; the
// RSA suites stay for a certificate an administrator brings.
const (
	tlsMinVersion     = "VersionTLS12" // the Kubernetes components' spelling
	etcdTLSMinVersion = "TLS1.2"       // etcd's
)

var tlsCipherSuites = []string{
	"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
	"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
	"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
	"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
	"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
}

// kubeTLSFlags are the Kubernetes control plane's flags for it.
func kubeTLSFlags() []string {
	return []string{"--tls-min-version=" + tlsMinVersion, "--tls-cipher-suites=" + strings.Join(tlsCipherSuites, ",")}
}
