package clusterapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Client calls the cluster API as the client certificate of its TLS
// configuration (a master's admin certificate for `gravity users` and
// `gravity resource`) or, with Bearer set, as an API token or session.
type Client struct {
	Addr   string
	Bearer string
	http   *http.Client
}

// NewClient talks to the API at addr (host:port).
func NewClient(addr string, tlsCfg *tls.Config) *Client {
	return &Client{Addr: addr, http: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{TLSClientConfig: tlsCfg}}}
}

// Do sends in (JSON, when not nil) and decodes the answer into out; an
// error answer comes back as its message.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	req, err := NewRequest(ctx, method, "https://"+c.Addr+path, in)
	if err != nil {
		return err
	}
	if c.Bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.Bearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cluster API at %s: %w", c.Addr, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e apiError
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(data))
		}
		return errors.New(e.Error)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("cluster API answer: %w", err)
	}
	return nil
}

// NewRequest is a request of the cluster service's: in as its JSON body
// (none when nil).
func NewRequest(ctx context.Context, method, url string, in any) (*http.Request, error) {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}
