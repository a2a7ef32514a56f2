package nodeagent

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Client asks nodes' agents to run phases, with a master's agent-client
// certificate.
type Client struct {
	HTTP *http.Client
	// Port is the agents' port: Port unless set.
	Port int
}

// NewClient talks to agents with cfg: a master's agent-client key pair,
// and the cluster CA as the only root (pki.ClientTLS).
func NewClient(cfg *tls.Config) *Client {
	return &Client{HTTP: &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, Proxy: nil}}}
}

func (c *Client) url(host, path string, q url.Values) url.URL {
	port := c.Port
	if port == 0 {
		port = Port
	}
	return url.URL{Scheme: "https", Host: net.JoinHostPort(host, strconv.Itoa(port)), Path: path, RawQuery: q.Encode()}
}

// Healthy says whether the agent at host answers.
func (c *Client) Healthy(ctx context.Context, host string) error {
	u := c.url(host, "/healthz", nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("node agent at %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("node agent at %s: %s", u.Host, resp.Status)
	}
	return nil
}

// AnswerError is a phase the agent refused or that failed on its node: the
// agent answered, unlike a connection that broke.
type AnswerError struct{ Err error }

func (e *AnswerError) Error() string { return e.Err.Error() }
func (e *AnswerError) Unwrap() error { return e.Err }

// Status is what the agent at host reports of its node.
func (c *Client) Status(ctx context.Context, host string) (Status, error) {
	var st Status
	u := c.url(host, "/v1/status", nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return st, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return st, fmt.Errorf("node agent at %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return st, fmt.Errorf("node agent at %s: %s (%s)", u.Host, strings.TrimSpace(string(msg)), resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return st, fmt.Errorf("node agent at %s: %w", u.Host, err)
	}
	return st, nil
}

// Run has the agent at host (its node's address) run, or roll back, phase
// of operation op, sending payload (nil for none) along, and waits for it.
func (c *Client) Run(ctx context.Context, host, op, phase string, rollback bool, payload io.Reader) error {
	q := url.Values{"operation": {op}, "phase": {phase}, "rollback": {strconv.FormatBool(rollback)}}
	u := c.url(host, "/v1/phases", q)
	if payload == nil {
		payload = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), payload)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("node agent at %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &AnswerError{fmt.Errorf("node agent at %s refused phase %s: %s (%s)", u.Host, phase, strings.TrimSpace(string(msg)), resp.Status)}
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("node agent at %s: %w", u.Host, err)
		}
		switch {
		case ev.Error != "":
			return &AnswerError{fmt.Errorf("on node %s: %s", host, ev.Error)}
		case ev.Done:
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("node agent at %s: %w", u.Host, err)
	}
	return fmt.Errorf("node agent at %s: %w", u.Host, errors.New("the connection ended before the phase did"))
}
