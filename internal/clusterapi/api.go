// Package clusterapi is the cluster API of users, invitations, sessions,
// API tokens, roles and configuration resources (`gravity users`,
// `gravity resource`, `gravity audit`, the signup pages), which every
// master's cluster service serves on :3009 and :32009 (docs/api.md). It
// keeps everything in the cluster (package cluster), so every master
// answers the same; it asks package identity whether a caller may.
//
// Contract: every call but the signup links and login is authenticated
// and checked against the caller's roles as the cluster has them at that
// moment; a refused call changes nothing and is audited.
package clusterapi

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/webui"
)

// Port is where every master serves the API (Gravity's gravity-site
// port); the cluster management URL (cluster.WebPort) serves it too.
const Port = 3009

// Config is what the API needs of the service that serves it.
type Config struct {
	// Clients reach the cluster with the service's identity.
	Clients cluster.Clients
	// CAs is this master's CA set: its own certificate is reissued from
	// it when the auth gateway's addresses change.
	CAs *pki.CASet
	// Self is this master's node config.
	Self config.Node
	// Certificate is what the service serves when the web certificates
	// have nothing else (its TLS configuration's), for the panel to show.
	Certificate *tls.Certificate
	// NodeProbe checks a node by its address for the panel's health
	// (default cluster.KubeletProbe).
	NodeProbe func(ctx context.Context, address string) error
	Log       *slog.Logger
	Now       func() time.Time
}

// API serves the cluster API.
type API struct {
	cfg Config
	// logins throttles failed logins by source address.
	logins loginLimiter
	web    webCert
}

// New makes the API.
func New(cfg Config) (*API, error) {
	if cfg.CAs == nil || cfg.CAs.Cluster == nil {
		return nil, errors.New("cluster API: no cluster CA")
	}
	if cfg.Clients.Kube == nil {
		return nil, errors.New("cluster API: no cluster client")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NodeProbe == nil {
		cfg.NodeProbe = cluster.KubeletProbe
	}
	return &API{cfg: cfg}, nil
}

// Routes adds the API's handlers to mux.
func (s *API) Routes(mux *http.ServeMux) {
	s.identityRoutes(mux)
	s.accessRoutes(mux)
	s.resourceRoutes(mux)
	s.panelRoutes(mux)
	mux.Handle("GET /web/", webui.Handler())
	mux.Handle("GET /{$}", http.RedirectHandler(webui.Path, http.StatusFound))
}

// Run keeps what the API needs in the cluster (its resource definitions,
// its roles' group bindings) and the web certificates current, until ctx
// ends.
func (s *API) Run(ctx context.Context) {
	go s.ensure(ctx)
	s.refreshWebCert(ctx)
}

// GetCertificate is the serving TLS configuration's: the tlskeypair's
// certificate for clients that name a host it covers, else this master's
// own (nil: the configuration's).
func (s *API) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.web.get(hello)
}

// ensure makes the resource definitions of the cluster API and the
// bindings of its roles' Kubernetes groups, which a cluster installed by
// an older gravity lacks, retrying until they exist.
func (s *API) ensure(ctx context.Context) {
	for {
		err := errors.Join(cluster.EnsureCRDs(ctx, s.cfg.Clients), cluster.EnsureGroupBindings(ctx, s.cfg.Clients))
		if err == nil || ctx.Err() != nil {
			return
		}
		s.cfg.Log.Warn("cluster API resource definitions not created yet", "error", err.Error())
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

// apiError is every error answer's body.
type apiError struct {
	Error string `json:"error"`
}

// Errors that are the caller's: 400 and 404.
var (
	errBadRequest = errors.New("refused")
	errNotFound   = errors.New("not found")
)

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

func notFound(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errNotFound, fmt.Sprintf(format, args...))
}

// WriteJSON answers v as JSON with status: the cluster service's answers
// are all written so (its join protocol's too).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeJSON(w http.ResponseWriter, status int, v any) { WriteJSON(w, status, v) }

func (s *API) fail(w http.ResponseWriter, status int, err error) {
	if status >= 500 {
		s.cfg.Log.Error("request failed", "error", err.Error())
	}
	writeJSON(w, status, apiError{Error: err.Error()})
}

// answer writes v, or err as the status it means.
func (s *API) answer(w http.ResponseWriter, v any, err error) {
	switch {
	case errors.Is(err, errBadRequest):
		s.fail(w, http.StatusBadRequest, err)
	case errors.Is(err, errNotFound):
		s.fail(w, http.StatusNotFound, err)
	case err != nil:
		s.fail(w, http.StatusInternalServerError, err)
	default:
		writeJSON(w, http.StatusOK, v)
	}
}

// DecodeJSON reads a request's JSON body (at most 1 MiB) into v; a field
// v does not have is an error.
func DecodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	return nil
}

func decode(r *http.Request, v any) error { return DecodeJSON(r, v) }
