// Package clusterservice is the cluster service, a runtime component on
// every master (`gravity runtime cluster-service`, HTTPS on :3009 as
// Gravity's gravity-site): it admits joining nodes (discovery signed with
// the join token, then the expand operation, the node's certificates from
// its own requests, a pod subnet allocated by the cluster), serves them the
// packages they install, and records their operations in the cluster. The
// joining node drives its expand plan (package join); every step that
// changes the cluster goes through here.
//
// Contract: nothing is answered before TLS; only discovery is answered
// without the join token (or, for a node acting on itself, the node's own
// client certificate); a refused request changes nothing.
package clusterservice

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/clusterapi"
	"github.com/opengravity/gravity/internal/jointoken"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/store"
)

// Config is the service's flags.
type Config struct {
	Addr string
	// WebAddr serves the same handler (the cluster management URL); empty:
	// none.
	WebAddr string
	// TLS serves Addr: the service's certificate, client certificates of
	// the cluster CA verified when given.
	TLS *tls.Config
	// CAs is the cluster's CA set (this master's copy).
	CAs *pki.CASet
	// Clients reach the cluster with the service's identity.
	Clients cluster.Clients
	// Self is this master's node config: the cluster-wide settings a
	// joining node copies.
	Self config.Node
	// Packages is this master's package store; nil: none to serve.
	Packages *store.Store
	// Version is this gravity's; a joining gravity must match it.
	Version string
	Log     *slog.Logger
	Now     func() time.Time
}

// Service serves the cluster API.
type Service struct {
	cfg Config

	mu        sync.Mutex
	discovery map[string]jointoken.Discovery // by token: signed once each
	// joins serialises admissions and removals within this service; the
	// operations lease (withLease) across masters.
	joins sync.Mutex
	// id tells this service's lease apart from a restarted one's.
	id string
	// api is the cluster API of users and resources, served beside the
	// join protocol.
	api *clusterapi.API
}

// New checks cfg and makes the service.
func New(cfg Config) (*Service, error) {
	if cfg.CAs == nil || cfg.CAs.Cluster == nil {
		return nil, errors.New("cluster service: no cluster CA")
	}
	if cfg.Clients.Kube == nil {
		return nil, errors.New("cluster service: no cluster client")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var cert *tls.Certificate
	if cfg.TLS != nil && len(cfg.TLS.Certificates) > 0 {
		cert = &cfg.TLS.Certificates[0]
	}
	api, err := clusterapi.New(clusterapi.Config{Clients: cfg.Clients, CAs: cfg.CAs, Self: cfg.Self, Certificate: cert, Log: cfg.Log, Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, discovery: map[string]jointoken.Discovery{}, id: newID(), api: api}, nil
}

// Handler is the API.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("GET "+PathDiscovery, s.handleDiscovery)
	mux.HandleFunc("POST "+PathJoin, s.withToken(s.handleJoin))
	mux.HandleFunc("POST "+PathProfile, s.withToken(s.handleProfile))
	mux.HandleFunc("PUT "+PathOperation+"{id}", s.withToken(s.handlePlan))
	mux.HandleFunc("POST "+PathOperation+"{id}/certs", s.withToken(s.handleCerts))
	mux.HandleFunc("POST "+PathOperation+"{id}/etcd", s.withToken(s.handleEtcd))
	mux.HandleFunc("GET "+PathOperation+"{id}/etcd", s.withToken(s.handleEtcd))
	mux.HandleFunc("DELETE "+PathOperation+"{id}/etcd", s.withToken(s.handleEtcd))
	mux.HandleFunc("POST "+PathOperation+"{id}/complete", s.withToken(s.handleComplete))
	mux.HandleFunc("POST "+PathOperation+"{id}/rollback", s.withToken(s.handleRollback))
	mux.HandleFunc("POST "+PathOperation+"{id}/hooks/{hook}", s.withToken(s.handleHook))
	mux.HandleFunc("GET "+PathPackage+"{ref...}", s.withToken(s.handlePackage))
	mux.HandleFunc("GET "+PathBlob+"{digest}", s.withToken(s.handleBlob))
	mux.HandleFunc("POST "+PathNodes+"{name}/remove", s.handleRemove)
	mux.HandleFunc("POST "+PathNodes+"{name}/certs", s.handleNodeCerts)
	s.api.Routes(mux)
	return mux
}

// Run serves until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	if s.cfg.TLS == nil {
		return errors.New("cluster service: no TLS configuration")
	}
	var lns []net.Listener
	for _, addr := range []string{s.cfg.Addr, s.cfg.WebAddr} {
		if addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("cluster service: %w", err)
		}
		lns = append(lns, ln)
	}
	go s.api.Run(ctx)
	tlsCfg := s.cfg.TLS.Clone()
	tlsCfg.GetCertificate = s.api.GetCertificate
	srv := &http.Server{Handler: s.Handler(), TLSConfig: tlsCfg, ReadHeaderTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(s.cfg.Log.Handler(), slog.LevelWarn)}
	done := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { done <- srv.ServeTLS(ln, "", "") }()
	}
	s.cfg.Log.Info("cluster service serving", "addr", s.cfg.Addr, "webAddr", s.cfg.WebAddr)
	select {
	case err := <-done:
		return fmt.Errorf("cluster service: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// handleDiscovery answers anyone with the CA bundle and its MAC under the
// current token: it tells a caller without the token nothing it could use.
func (s *Service) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	t, err := cluster.Token(r.Context(), s.cfg.Clients)
	if err != nil {
		s.fail(w, http.StatusServiceUnavailable, fmt.Errorf("the cluster is not ready to admit nodes: %w", err))
		return
	}
	s.mu.Lock()
	d, ok := s.discovery[t.Token]
	s.mu.Unlock()
	if !ok {
		if d, err = jointoken.Sign(t.Token, s.cfg.CAs.Cluster.CertPEM()); err != nil {
			s.fail(w, http.StatusInternalServerError, err)
			return
		}
		// The derivation took 64 MiB, needed again only for a new token.
		debug.FreeOSMemory()
		s.mu.Lock()
		clear(s.discovery) // a replaced token's answer is of no more use
		s.discovery[t.Token] = d
		s.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, d)
}

// withToken admits requests that carry the cluster's unexpired join token.
func (s *Service) withToken(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, err := cluster.Token(r.Context(), s.cfg.Clients)
		if err != nil {
			s.fail(w, http.StatusServiceUnavailable, fmt.Errorf("reading the join token: %w", err))
			return
		}
		if !jointoken.Check(r, t.Token) {
			s.cfg.Log.Warn("request with an invalid token refused", "remote", r.RemoteAddr, "path", r.URL.Path)
			s.fail(w, http.StatusUnauthorized, jointoken.ErrInvalidToken)
			return
		}
		if t.Expired(s.cfg.Now()) {
			s.fail(w, http.StatusUnauthorized, fmt.Errorf("the join token expired at %s", t.Expires.UTC().Format(time.RFC3339)))
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) { clusterapi.WriteJSON(w, status, v) }

func (s *Service) fail(w http.ResponseWriter, status int, err error) {
	if status >= 500 {
		s.cfg.Log.Error("request failed", "error", err.Error())
	}
	writeJSON(w, status, apiError{Error: err.Error()})
}

// busyError is a refusal because another operation holds the cluster.
type busyError struct{ error }

// answer writes v, or err as the status it means: busy (409, retry),
// refused (400, the caller's fault) or failed (500).
func (s *Service) answer(w http.ResponseWriter, v any, err error) {
	var busy busyError
	switch {
	case errors.As(err, &busy):
		writeJSON(w, http.StatusConflict, apiError{Error: err.Error(), Busy: true})
	case errors.Is(err, errBadRequest):
		s.fail(w, http.StatusBadRequest, err)
	case err != nil:
		s.fail(w, http.StatusInternalServerError, err)
	default:
		writeJSON(w, http.StatusOK, v)
	}
}

func decode(r *http.Request, v any) error { return clusterapi.DecodeJSON(r, v) }
