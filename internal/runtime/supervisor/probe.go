package supervisor

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
)

// TCPProbe is ready once addr accepts a TCP connection.
func TCPProbe(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("dial %s: %w", addr, err)
		}
		return c.Close()
	}
}

// HTTPProbe is ready once a GET of url answers 2xx. tlsConfig, if not nil,
// is used for https (a client certificate for /readyz, the cluster CA).
func HTTPProbe(url string, tlsConfig *tls.Config) func(context.Context) error {
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig, DisableKeepAlives: true}}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("probe %s: %w", url, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 512))
		if err != nil {
			return fmt.Errorf("probe %s: reading body: %w", url, err)
		}
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("probe %s: %s: %q", url, resp.Status, body)
		}
		return nil
	}
}
