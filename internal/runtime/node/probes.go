package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"

	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/runtime/supervisor"
)

// Probe describes a readiness check: URL is http(s)://… (a GET that must
// answer 2xx), tcp://host:port (a connection) or unix:///path (a
// connection to a socket). An https probe verifies the server against CA
// and presents the Cert/Key client pair.
type Probe struct {
	URL           string
	CA, Cert, Key string
}

// Func makes the probe function, reading the TLS files now (through tls)
// so that a missing certificate fails before anything starts.
func (p Probe) Func(tls ProbeTLS) (func(context.Context) error, error) {
	u, err := url.Parse(p.URL)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	switch u.Scheme {
	case "http":
		return supervisor.HTTPProbe(p.URL, nil), nil
	case "https":
		t, err := tls(p.CA, p.Cert, p.Key)
		if err != nil {
			return nil, err
		}
		return supervisor.HTTPProbe(p.URL, t), nil
	case "tcp":
		return supervisor.TCPProbe(u.Host), nil
	case "unix":
		return UnixProbe(u.Path), nil
	}
	return nil, fmt.Errorf("probe %s: unknown scheme %q", p.URL, u.Scheme)
}

// ProbeTLS makes the TLS client configuration of an https probe from the
// CA that signed the server's certificate and the client key pair to
// present. LoadTLS is the one a node uses.
type ProbeTLS func(caFile, certFile, keyFile string) (*tls.Config, error)

// LoadTLS reads the PEM files. It verifies the server against caFile only,
// never the system roots, and never skips verification.
func LoadTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg, err := pki.ClientTLS(certFile, keyFile, caFile)
	if err != nil {
		return nil, fmt.Errorf("probe TLS: %w", err)
	}
	return cfg, nil
}

// UnixProbe is ready once the unix socket at path accepts a connection.
func UnixProbe(path string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", path)
		if err != nil {
			return fmt.Errorf("probe: dial %s: %w", path, err)
		}
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("probe: closing %s: %w", path, err)
		}
		return nil
	}
}
