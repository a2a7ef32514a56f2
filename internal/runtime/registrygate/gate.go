// Package registrygate is the cluster registry's front door, a component
// of every master's runtime. It serves registry.local:5000 over mutual TLS
// and hands each request to the registry (distribution), which listens on
// a unix socket only root may open, after authorizing it by the client
// certificate, which distribution cannot do: a certificate of the cluster
// CA may pull when it belongs to a registry client (every node's
// containerd) and may push or delete only when it belongs to a registry
// pusher, which masters alone hold for the cluster's own push paths
// (install's export, upload, join's sync). A worker's keys therefore
// cannot replace the images every node runs.
package registrygate

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"time"

	"github.com/opengravity/gravity/internal/pki"
)

// Config is one gate.
type Config struct {
	Addr   string // host:port it serves on
	Socket string // the registry's unix socket
	// TLS has the registry's serving certificate and the cluster CA as
	// client CA; client certificates are required and verified.
	TLS *tls.Config
	Log *slog.Logger
}

// Access is what a client may do.
type Access int

const (
	NoAccess Access = iota
	Pull
	Push // pull, push and delete
)

// accessOf is what the verified client certificate chain allows, by the
// leaf's organization.
func accessOf(state *tls.ConnectionState) Access {
	if state == nil || len(state.VerifiedChains) == 0 || len(state.VerifiedChains[0]) == 0 {
		return NoAccess
	}
	orgs := state.VerifiedChains[0][0].Subject.Organization
	switch {
	case slices.Contains(orgs, pki.RegistryPushers):
		return Push
	case slices.Contains(orgs, pki.RegistryClients):
		return Pull
	}
	return NoAccess
}

// needs is the access a request needs: reading (GET, HEAD) is pulling;
// anything else changes the registry.
func needs(r *http.Request) Access {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return Pull
	}
	return Push
}

// Handler authorizes each request and passes it to the registry on
// socket.
func Handler(socket string, log *slog.Logger) http.Handler {
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: pki.RegistryHost})
			pr.Out.Host = pr.In.Host
		},
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.Error("registry unreachable", "method", r.Method, "path", r.URL.Path, "err", err)
			deny(w, http.StatusBadGateway, "UNAVAILABLE", "the registry is not answering")
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		have, want := accessOf(r.TLS), needs(r)
		if have < want {
			who := "no client certificate"
			if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
				who = r.TLS.PeerCertificates[0].Subject.CommonName
			}
			log.Warn("registry request denied", "client", who, "method", r.Method, "path", r.URL.Path,
				"remote", r.RemoteAddr)
			msg := "this certificate may not pull from the cluster registry"
			if have == Pull {
				msg = "this certificate may pull, not push: only the cluster's own push paths push to the cluster registry"
			}
			deny(w, http.StatusForbidden, "DENIED", msg)
			return
		}
		proxy.ServeHTTP(w, r)
	})
}

// deny answers in the registry API's error format, which docker, crane
// and containerd print.
func deny(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

// Run serves until ctx ends, then stops taking requests and gives those in
// flight (a layer being pulled) a moment to finish.
func Run(ctx context.Context, c Config) error {
	if c.TLS == nil || c.TLS.ClientAuth != tls.RequireAndVerifyClientCert || c.TLS.ClientCAs == nil {
		return errors.New("registry gate: client certificates must be required and verified")
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("registry gate: %w", err)
	}
	srv := &http.Server{Handler: Handler(c.Socket, c.Log), TLSConfig: c.TLS,
		ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(c.Log.Handler(), slog.LevelWarn)}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	c.Log.Info("registry gate serving", "addr", c.Addr, "registry", c.Socket)
	select {
	case err := <-done:
		return fmt.Errorf("registry gate: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
