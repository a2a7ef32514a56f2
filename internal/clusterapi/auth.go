package clusterapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/identity"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/resources"
)

// Caller kinds.
const (
	callerMaster = "master" // a master's admin certificate
	callerNode   = "node"   // any other certificate of the cluster CA
	callerUser   = "user"   // an API token or a session
)

// SessionCookie carries a web session.
const SessionCookie = "grv_session"

// caller is who made a request, as authenticate found.
type caller struct {
	Name     string
	Kind     string
	UserType string
	Roles    []string
	specs    []resources.RoleSpec
	// session is the hash of the session the request came with, if any.
	session string
	// cookie: the session came as the cookie, which browsers send alone.
	cookie bool
}

// errUnauthenticated is a request with no credential the API accepts.
var errUnauthenticated = errors.New("authentication required: an API token (Authorization: Bearer), a session or a client certificate of the cluster")

// authenticate finds the caller: a client certificate of the cluster (a
// master's admin certificate acts with @teleadmin; any other, a node's,
// with no permission at all), else a bearer API token or session, else
// the session cookie.
func (s *API) authenticate(r *http.Request) (*caller, error) {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		cert := r.TLS.VerifiedChains[0][0]
		if slices.Contains(cert.Subject.Organization, pki.SystemMasters) {
			return &caller{Name: cert.Subject.CommonName + " (master certificate)", Kind: callerMaster,
				Roles: []string{identity.Admin}, specs: []resources.RoleSpec{identity.Builtin()[identity.Admin]}}, nil
		}
		return &caller{Name: cert.Subject.CommonName, Kind: callerNode}, nil
	}
	secret, fromCookie := "", false
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, value, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || value == "" {
			return nil, errors.New("the Authorization header takes a bearer token: Authorization: Bearer <token>")
		}
		secret = strings.TrimSpace(value)
	} else if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		secret, fromCookie = c.Value, true
	}
	if secret == "" {
		return nil, errUnauthenticated
	}
	ctx := r.Context()
	now := s.cfg.Now()
	if !fromCookie {
		tok, err := cluster.GetResource(ctx, s.cfg.Clients, resources.KindToken, secret)
		switch {
		case err == nil && identity.Equal(tok.Metadata.Name, secret):
			if tok.Metadata.Expires != nil && !now.Before(*tok.Metadata.Expires) {
				return nil, errors.New("the API token has expired")
			}
			return s.userCaller(ctx, tok.Spec.(*resources.TokenSpec).User, "")
		case err != nil && !errors.Is(err, cluster.ErrNotFound):
			return nil, err
		}
	}
	hash := identity.SecretHash(secret)
	t, err := cluster.GetTicket(ctx, s.cfg.Clients, cluster.TicketSession, hash, now)
	if errors.Is(err, cluster.ErrNotFound) {
		return nil, errors.New("invalid or expired token or session")
	}
	if err != nil {
		return nil, err
	}
	c, err := s.userCaller(ctx, t.User, hash)
	if c != nil {
		c.cookie = fromCookie
	}
	return c, err
}

// userCaller is user with their roles as the cluster has them now: a
// user removed, or a role changed, takes effect on the next request.
func (s *API) userCaller(ctx context.Context, name, session string) (*caller, error) {
	u, err := cluster.GetResource(ctx, s.cfg.Clients, resources.KindUser, name)
	if errors.Is(err, cluster.ErrNotFound) {
		return nil, fmt.Errorf("user %s no longer exists", name)
	}
	if err != nil {
		return nil, err
	}
	spec := u.Spec.(*resources.UserSpec)
	specs, err := s.roleSpecs(ctx, spec.Roles)
	if err != nil {
		return nil, err
	}
	return &caller{Name: name, Kind: callerUser, UserType: spec.Type, Roles: spec.Roles, specs: specs, session: session}, nil
}

// roleSpecs reads the named roles; one that was deleted grants nothing.
func (s *API) roleSpecs(ctx context.Context, names []string) ([]resources.RoleSpec, error) {
	return cluster.RoleSpecs(ctx, s.cfg.Clients, names)
}

// roleExists says whether a user may be given role name.
func (s *API) roleExists(ctx context.Context, name string) error {
	if identity.IsBuiltin(name) {
		return nil
	}
	_, err := cluster.GetResource(ctx, s.cfg.Clients, resources.KindRole, name)
	if errors.Is(err, cluster.ErrNotFound) {
		return refuse("role %q does not exist", name)
	}
	return err
}

// authed wraps an API handler: the caller must be authenticated and hold
// verb on resource. Refusals are audited.
func (s *API) authed(resource, verb string, h func(http.ResponseWriter, *http.Request, *caller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := s.authenticate(r)
		if err != nil {
			s.fail(w, http.StatusUnauthorized, err)
			return
		}
		if err := checkCSRF(r, c); err != nil {
			s.fail(w, http.StatusForbidden, err)
			return
		}
		if resource != "" {
			if err := identity.Check(c.Name, c.specs, resource, verb); err != nil {
				s.audit(r, c.Name, "G9000W", "access.denied", err.Error(), nil)
				s.fail(w, http.StatusForbidden, err)
				return
			}
		}
		h(w, r, c)
	}
}

// can is a check inside a handler, for permissions that depend on the
// request.
func (s *API) can(w http.ResponseWriter, r *http.Request, c *caller, resource, verb string) bool {
	if err := identity.Check(c.Name, c.specs, resource, verb); err != nil {
		s.audit(r, c.Name, "G9000W", "access.denied", err.Error(), nil)
		s.fail(w, http.StatusForbidden, err)
		return false
	}
	return true
}

// audit records an event; a failure to record is logged, and does not
// undo what was done.
func (s *API) audit(r *http.Request, user, code, event, msg string, fields map[string]string) {
	from, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		from = r.RemoteAddr
	}
	e := cluster.AuditEvent{Time: s.cfg.Now().UTC(), Code: code, Event: event, User: user, From: from, Message: msg, Fields: fields}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	if err := cluster.RecordEvent(ctx, s.cfg.Clients, e); err != nil {
		s.cfg.Log.Error("audit event not recorded", "event", event, "user", user, "error", err.Error())
	}
	s.cfg.Log.Info("audit", "event", event, "user", user, "from", from, "message", msg)
}
