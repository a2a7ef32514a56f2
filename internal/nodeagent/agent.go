// Package nodeagent is the node agent, a runtime component on every node
// (`gravity runtime agent`, HTTPS :3012): it runs on its node the phases of
// an operation that a master drives, such as an upgrade's new packages,
// gravity binary and runtime switch on every node, and reports the node's
// runtime to masters (GET /v1/status). It runs phases only, never a
// command:
//
//   - the caller proves with a client certificate of the cluster CA that it
//     holds the identity only masters have (pki.AgentClients);
//   - the phase comes from the cluster's record of the operation (read with
//     this node's own credentials), never from the request, which names
//     only the operation and the phase: the phase must be this node's,
//     started (or, for a rollback, started or done), and of a type this
//     agent has an executor for;
//   - a request may carry a payload (the new binary, the new packages'
//     blobs) that the executor checks against the digests the phase records.
//
// Every request is logged with the caller and its outcome. One phase runs
// at a time; a request for a phase that is running waits for it, and runs
// it again: executors are idempotent, as the operation engine requires.
//
// The protocol is kept stable across versions: the new version's driver
// talks to the agents of the old one.
package nodeagent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/plan"
)

// Port is the agent's (Gravity's agents listened on 3012).
const Port = 3012

// MaxPayload bounds what a request may carry.
const MaxPayload = 1 << 30

// Factory makes the executor of phase ph of operation p; payload is the
// path of what the request carried, "" when it carried nothing.
type Factory func(p *plan.Plan, ph *plan.Phase, payload string) (plan.Executor, error)

// Registry maps a phase type to its executor factory.
type Registry map[string]Factory

// Config is an agent's.
type Config struct {
	Addr string
	// HealthAddr, when set, serves /healthz in plain HTTP (loopback, for
	// the supervisor's probe).
	HealthAddr string
	// TLS serves the node's agent certificate and verifies clients against
	// the cluster CA.
	TLS *tls.Config
	// Node is this node's name: the agent runs only phases for it.
	Node string
	// Operation reads an operation's plan from the cluster.
	Operation func(ctx context.Context, id string) (*plan.Plan, error)
	Executors Registry
	// WorkDir holds payloads while their phase runs.
	WorkDir string
	// Status reports the node's runtime (GET /v1/status); nil: not served.
	Status func() (Status, error)
	Log    *slog.Logger
}

// Agent serves Config's node.
type Agent struct {
	cfg Config
	mu  sync.Mutex // one phase at a time
}

// New checks cfg.
func New(cfg Config) (*Agent, error) {
	if cfg.Node == "" || cfg.Operation == nil || cfg.WorkDir == "" {
		return nil, errors.New("node agent: node, operation reader and work directory are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Agent{cfg: cfg}, nil
}

// Handler is the agent's API.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("POST /v1/phases", a.handlePhase)
	mux.HandleFunc("GET /v1/status", a.handleStatus)
	return mux
}

// Status is what an agent reports of its node: what a master driving an
// upgrade waits for after it switched the node's runtime.
type Status struct {
	// Version is the agent's gravity version, which is the version of
	// every gravity component of the node's runtime.
	Version string `json:"version"`
	// Runtime is the runtime daemon's state ("running" once every
	// component is ready) and BinDir the runtime version's binaries it runs.
	Runtime string `json:"runtime"`
	BinDir  string `json:"binDir"`
}

func (a *Agent) handleStatus(w http.ResponseWriter, r *http.Request) {
	if _, err := caller(r); err != nil {
		var rf *refusal
		errors.As(err, &rf)
		http.Error(w, err.Error(), rf.status)
		return
	}
	if a.cfg.Status == nil {
		http.Error(w, "this agent reports no status", http.StatusNotImplemented)
		return
	}
	st, err := a.cfg.Status()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}

// Run serves until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	if a.cfg.TLS == nil {
		return errors.New("node agent: no TLS configuration")
	}
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("node agent: %w", err)
	}
	srv := &http.Server{Handler: a.Handler(), TLSConfig: a.cfg.TLS, ReadHeaderTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(a.cfg.Log.Handler(), slog.LevelWarn)}
	done := make(chan error, 2)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	servers := []*http.Server{srv}
	if a.cfg.HealthAddr != "" {
		hln, err := net.Listen("tcp", a.cfg.HealthAddr)
		if err != nil {
			_ = srv.Close()
			return fmt.Errorf("node agent: %w", err)
		}
		health := &http.Server{Handler: http.HandlerFunc(healthz), ReadHeaderTimeout: 10 * time.Second}
		go func() { done <- health.Serve(hln) }()
		servers = append(servers, health)
	}
	a.cfg.Log.Info("node agent serving", "addr", a.cfg.Addr, "node", a.cfg.Node)
	err = nil
	select {
	case err = <-done:
		err = fmt.Errorf("node agent: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		err = errors.Join(err, s.Shutdown(shutdown))
	}
	return err
}

func healthz(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }

// Event is the line that ends a phase's response, once the phase has run:
// Done, or the Error it failed with. The response is held open until then.
type Event struct {
	Error string `json:"error,omitempty"`
	Done  bool   `json:"done,omitempty"`
}

// refusal is a request the agent will not run, with its HTTP status.
type refusal struct {
	status int
	err    error
}

func (r *refusal) Error() string { return r.err.Error() }

func refuse(status int, format string, args ...any) error {
	return &refusal{status: status, err: fmt.Errorf(format, args...)}
}

// caller is the verified client certificate's subject, or a refusal.
func caller(r *http.Request) (string, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return "", refuse(http.StatusUnauthorized, "a client certificate of the cluster CA is required")
	}
	cert := r.TLS.VerifiedChains[0][0]
	if !slices.Contains(cert.Subject.Organization, pki.AgentClients) {
		return cert.Subject.CommonName, refuse(http.StatusForbidden, "%s may not run phases on nodes", describe(cert))
	}
	return cert.Subject.CommonName, nil
}

func describe(c *x509.Certificate) string {
	return fmt.Sprintf("%q (organization %v)", c.Subject.CommonName, c.Subject.Organization)
}

// authorize finds the phase in the cluster's record of the operation and
// checks that this agent may run it now.
func (a *Agent) authorize(ctx context.Context, opID, phaseID string, rollback bool) (*plan.Plan, *plan.Phase, error) {
	if opID == "" || phaseID == "" {
		return nil, nil, refuse(http.StatusBadRequest, "operation and phase are required")
	}
	p, err := a.cfg.Operation(ctx, opID)
	if errors.Is(err, plan.ErrNoPlan) {
		return nil, nil, refuse(http.StatusNotFound, "the cluster has no operation %s", opID)
	}
	if err != nil {
		return nil, nil, refuse(http.StatusServiceUnavailable, "reading operation %s: %v", opID, err)
	}
	ph, err := p.Find(phaseID)
	switch {
	case err != nil:
		return nil, nil, refuse(http.StatusNotFound, "operation %s: %v", opID, err)
	case len(ph.Phases) > 0:
		return nil, nil, refuse(http.StatusBadRequest, "phase %s of operation %s is a group; its leaves run one by one", phaseID, opID)
	case ph.Node != a.cfg.Node:
		return nil, nil, refuse(http.StatusForbidden, "phase %s of operation %s runs on node %q, not on this one (%s)", phaseID, opID, ph.Node, a.cfg.Node)
	case a.cfg.Executors[ph.Type] == nil:
		return nil, nil, refuse(http.StatusNotImplemented, "phase %s is of type %q, which this node's agent does not run", phaseID, ph.Type)
	}
	st := ph.StateOf()
	if !rollback && st != plan.InProgress {
		return nil, nil, refuse(http.StatusConflict, "phase %s of operation %s is %s; the driver marks it in progress before running it", phaseID, opID, st)
	}
	if rollback && st != plan.InProgress && st != plan.Completed && st != plan.Failed {
		return nil, nil, refuse(http.StatusConflict, "phase %s of operation %s is %s: there is nothing to roll back", phaseID, opID, st)
	}
	return p, ph, nil
}

func (a *Agent) handlePhase(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opID, phaseID, rollback := q.Get("operation"), q.Get("phase"), q.Get("rollback") == "true"
	log := a.cfg.Log.With("operation", opID, "phase", phaseID, "rollback", rollback, "remote", r.RemoteAddr)
	who, err := caller(r)
	log = log.With("caller", who)
	var p *plan.Plan
	var ph *plan.Phase
	if err == nil {
		p, ph, err = a.authorize(r.Context(), opID, phaseID, rollback)
	}
	if err != nil {
		var rf *refusal
		status := http.StatusInternalServerError
		if errors.As(err, &rf) {
			status = rf.status
		}
		log.Warn("phase refused", "status", status, "err", err)
		http.Error(w, err.Error(), status)
		return
	}
	payload, cleanup, err := a.receive(r.Body)
	if err != nil {
		log.Warn("phase refused", "err", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	defer cleanup()

	a.mu.Lock()
	defer a.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	err = a.run(r.Context(), p, ph, payload, rollback)
	if err != nil {
		log.Error("phase failed", "err", err)
		_ = enc.Encode(Event{Error: err.Error()})
		return
	}
	log.Info("phase done")
	_ = enc.Encode(Event{Done: true})
}

func (a *Agent) run(ctx context.Context, p *plan.Plan, ph *plan.Phase, payload string, rollback bool) error {
	ex, err := a.cfg.Executors[ph.Type](p, ph, payload)
	if err != nil {
		return err
	}
	if rollback {
		return ex.Rollback(ctx)
	}
	return ex.Execute(ctx)
}

// receive keeps the request's payload in a file of the work directory
// (0600), or returns "" when it is empty.
func (a *Agent) receive(body io.Reader) (string, func(), error) {
	if err := os.MkdirAll(a.cfg.WorkDir, 0o700); err != nil {
		return "", nil, err
	}
	f, err := os.CreateTemp(a.cfg.WorkDir, "payload-*")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = os.Remove(f.Name()) }
	n, err := io.Copy(f, io.LimitReader(body, MaxPayload+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		cleanup()
		return "", nil, fmt.Errorf("receiving the payload: %w", err)
	case n > MaxPayload:
		cleanup()
		return "", nil, fmt.Errorf("the payload is over %d bytes", MaxPayload)
	case n == 0:
		cleanup()
		return "", func() {}, nil
	}
	return f.Name(), cleanup, nil
}
