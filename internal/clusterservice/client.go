package clusterservice

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/opengravity/gravity/internal/clusterapi"
	"github.com/opengravity/gravity/internal/install/hook"
	"github.com/opengravity/gravity/internal/jointoken"
	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/store"
)

// Port is where every master's cluster service listens.
const Port = clusterapi.Port

// ErrBusy means another operation holds the cluster: try again later.
var ErrBusy = errors.New("another operation is in progress")

// Client talks to one master's cluster service.
type Client struct {
	// Addr is host:port.
	Addr  string
	Token string
	// CA is the cluster CA the service's certificate is verified against.
	CA *x509.CertPool
	// Skew is how far the service's clock is ahead of this host's, as
	// its discovery answer's Date said (to a second).
	Skew time.Duration
	http *http.Client
}

// Discover fetches addr's discovery answer and checks it against token:
// the returned client trusts the CA the token vouches for, and no other.
// Nothing is sent before that but the request for the answer.
func Discover(ctx context.Context, addr, token string) (*Client, error) {
	// The answer is checked by its MAC, not by TLS: there is no CA to
	// verify the service against before it.
	insecure := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}} //nolint:gosec // see above
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+PathDiscovery, nil)
	if err != nil {
		return nil, err
	}
	resp, err := insecure.Do(req)
	if err != nil {
		return nil, fmt.Errorf("no cluster service at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	var d jointoken.Discovery
	if err := readResponse(resp, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	pool, err := jointoken.Verify(token, d)
	if err != nil {
		return nil, err
	}
	c := &Client{Addr: addr, Token: token, CA: pool}
	if t, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		c.Skew = t.Sub(time.Now().Truncate(time.Second))
	}
	c.http = &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: time.Minute}}
	return c, nil
}

// ServiceAddr is host's cluster service address.
func ServiceAddr(host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(Port))
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return c.doWith(ctx, c.http, method, path, in, out)
}

// doWith is do with hc, whose timeouts may differ.
func (c *Client) doWith(ctx context.Context, hc *http.Client, method, path string, in, out any) error {
	req, err := clusterapi.NewRequest(ctx, method, "https://"+c.Addr+path, in)
	if err != nil {
		return err
	}
	jointoken.Set(req, c.Token)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("cluster service at %s: %w", c.Addr, err)
	}
	defer resp.Body.Close()
	return readResponse(resp, out)
}

// readResponse decodes a success into out, an error body into an error.
func readResponse(resp *http.Response, out any) error {
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e apiError
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(data))
		}
		if e.Busy {
			return fmt.Errorf("%w: %s", ErrBusy, e.Error)
		}
		if resp.StatusCode == http.StatusUnauthorized && e.Error == jointoken.ErrInvalidToken.Error() {
			return jointoken.ErrInvalidToken
		}
		return errors.New(e.Error)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("cluster service answer: %w", err)
	}
	return nil
}

// Join asks to be admitted.
func (c *Client) Join(ctx context.Context, req JoinRequest) (*JoinResponse, error) {
	var out JoinResponse
	if err := c.do(ctx, http.MethodPost, PathJoin, req, &out); err != nil {
		return nil, err
	}
	if out.Plan == nil || out.OperationID == "" {
		return nil, errors.New("cluster service answer: no operation")
	}
	return &out, nil
}

// Profile asks which role and profile req would join with.
func (c *Client) Profile(ctx context.Context, req JoinRequest) (*ProfileResponse, error) {
	var out ProfileResponse
	if err := c.do(ctx, http.MethodPost, PathProfile, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Certs has the node's certificate requests signed.
func (c *Client) Certs(ctx context.Context, op string, csrs map[string][]byte) (*CertResponse, error) {
	var out CertResponse
	if err := c.do(ctx, http.MethodPost, PathOperation+op+"/certs", CertRequest{CSRs: csrs}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SavePlan records the operation's plan in the cluster.
func (c *Client) SavePlan(ctx context.Context, p *plan.Plan) error {
	return c.do(ctx, http.MethodPut, PathOperation+p.OperationID, PlanUpdate{Plan: p}, nil)
}

// Complete ends the operation with its finished plan.
func (c *Client) Complete(ctx context.Context, p *plan.Plan) error {
	return c.do(ctx, http.MethodPost, PathOperation+p.OperationID+"/complete", PlanUpdate{Plan: p}, nil)
}

// Rollback undoes the cluster's side of the operation.
func (c *Client) Rollback(ctx context.Context, p *plan.Plan) error {
	return c.do(ctx, http.MethodPost, PathOperation+p.OperationID+"/rollback", PlanUpdate{Plan: p}, nil)
}

// FetchPackage copies package ref into st, blob by blob, each checked
// against its digest; blobs st holds already are not fetched again, so
// an interrupted fetch continues.
func (c *Client) FetchPackage(ctx context.Context, st *store.Store, ref string) error {
	var info PackageInfo
	if err := c.do(ctx, http.MethodGet, PathPackage+ref, nil, &info); err != nil {
		return err
	}
	for _, l := range info.Layers {
		if st.HasBlob(l.Digest, l.Size) {
			continue
		}
		if err := c.fetchBlob(ctx, st, l.Digest.String(), l.Size); err != nil {
			return fmt.Errorf("package %s: %w", ref, err)
		}
	}
	_, err := st.PutPackageDescriptors(ctx, ref, info.Meta, info.Layers)
	return err
}

func (c *Client) fetchBlob(ctx context.Context, st *store.Store, digest string, size int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+c.Addr+PathBlob+digest, nil)
	if err != nil {
		return err
	}
	jointoken.Set(req, c.Token)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("blob %s: %w", digest, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("blob %s: %w", digest, readResponse(resp, nil))
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		return err
	}
	if err := st.WriteBlob(ctx, h, size, resp.Body); err != nil {
		return fmt.Errorf("blob %s: %w", digest, err)
	}
	return nil
}

// Remove asks the service at addr to take node name out of the cluster,
// authenticated by a client certificate of the cluster (tlsCfg): an
// admin's for any node, a node's own for itself. It returns the shrink
// operation's plan.
func Remove(ctx context.Context, addr string, tlsCfg *tls.Config, name string, force bool) (*plan.Plan, error) {
	var out RemoveResponse
	if err := postWithCert(ctx, addr, tlsCfg, PathNodes+name+"/remove", RemoveTimeout, RemoveRequest{Force: force}, &out); err != nil {
		return nil, err
	}
	return out.Plan, nil
}

// RemoveTimeout bounds a removal: the drain, and the application's two
// node hooks with their own deadlines.
const RemoveTimeout = 5*time.Minute + 2*hook.DefaultDeadline

// postWithCert posts in to path on the service at addr as the client
// certificate of tlsCfg (no token), and decodes the answer into out.
func postWithCert(ctx context.Context, addr string, tlsCfg *tls.Config, path string, timeout time.Duration, in, out any) error {
	data, err := json.Marshal(in)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+path, bytes.NewReader(data))
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("cluster service at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	return readResponse(resp, out)
}

// Etcd adds the joining master to etcd (POST), reads its membership
// (GET) or removes it (DELETE).
func (c *Client) Etcd(ctx context.Context, method, op string) (*EtcdResponse, error) {
	var out EtcdResponse
	if method == http.MethodDelete {
		return nil, c.do(ctx, method, PathOperation+op+"/etcd", nil, nil)
	}
	if err := c.do(ctx, method, PathOperation+op+"/etcd", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
