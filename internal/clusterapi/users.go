package clusterapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/identity"
	"github.com/opengravity/gravity/internal/resources"
)

// Paths of the cluster API's identity part (docs/api.md).
const (
	PathWhoami   = "/v1/whoami"
	PathUsers    = "/v1/users"    // GET list; POST InviteRequest → InviteResponse; /{name} DELETE; /{name}/reset POST
	PathInvites  = "/v1/invites/" // + secret: GET TicketInfo; POST PasswordRequest → SessionResponse
	PathSessions = "/v1/sessions" // POST LoginRequest → SessionResponse; DELETE logs out
	PathAudit    = "/v1/audit"
	PathSignup   = "/web/newuser/"
	PathReset    = "/web/reset/"
)

// UserInfo is a user as listings show it.
type UserInfo struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Roles    []string `json:"roles"`
	FullName string   `json:"fullName,omitempty"`
}

// InviteRequest asks for an invitation (a new user) or a reset link.
type InviteRequest struct {
	Name  string        `json:"name"`
	Roles []string      `json:"roles,omitempty"`
	TTL   time.Duration `json:"ttl,omitempty"`
}

// InviteResponse is the link to share.
type InviteResponse struct {
	URL     string        `json:"url"`
	TTL     time.Duration `json:"ttl"`
	Expires time.Time     `json:"expires"`
}

// TicketInfo is what an invitation or reset link is for. When the
// cluster asks for a second factor, it carries the one-time code key to
// add to an authenticator app; completing the link takes a code of it.
type TicketInfo struct {
	Kind         string    `json:"kind"`
	User         string    `json:"user"`
	Expires      time.Time `json:"expires"`
	SecondFactor string    `json:"secondFactor"`
	OTPSecret    string    `json:"otpSecret,omitempty"`
	OTPURL       string    `json:"otpURL,omitempty"`
}

// PasswordRequest completes a signup or reset.
type PasswordRequest struct {
	Password string `json:"password"`
	OTP      string `json:"otp,omitempty"`
}

// LoginRequest logs a user in.
type LoginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
	OTP      string `json:"otp,omitempty"`
}

// SessionResponse is a new session: Token goes in Authorization: Bearer
// (the web panel gets it as a cookie too).
type SessionResponse struct {
	User    string    `json:"user"`
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

// WhoamiResponse is the caller as the API sees them.
type WhoamiResponse struct {
	User  string   `json:"user"`
	Kind  string   `json:"kind"`
	Type  string   `json:"type,omitempty"`
	Roles []string `json:"roles,omitempty"`
	// Permissions are what the web panel shows or hides by, as "verb
	// resource": the API checks every call anyway.
	Permissions map[string]bool `json:"permissions,omitempty"`
}

func (s *API) identityRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+PathWhoami, s.authed("", "", s.handleWhoami))
	mux.HandleFunc("GET "+PathUsers, s.authed("user", "list", s.handleListUsers))
	mux.HandleFunc("POST "+PathUsers, s.authed("user", "create", s.handleInvite))
	mux.HandleFunc("DELETE "+PathUsers+"/{name}", s.authed("user", "delete", s.handleDeleteUser))
	mux.HandleFunc("POST "+PathUsers+"/{name}/reset", s.authed("user", "update", s.handleReset))
	mux.HandleFunc("GET "+PathInvites+"{secret}", s.handleTicketInfo)
	mux.HandleFunc("POST "+PathInvites+"{secret}", s.handleCompleteTicket)
	mux.HandleFunc("POST "+PathSessions, s.handleLogin)
	mux.HandleFunc("DELETE "+PathSessions, s.authed("", "", s.handleLogout))
	mux.HandleFunc("GET "+PathAudit, s.authed("event", "list", s.handleAudit))
	mux.HandleFunc("GET "+PathSignup+"{secret}", s.handleSignupPage)
	mux.HandleFunc("POST "+PathSignup+"{secret}", s.handleSignupForm)
	mux.HandleFunc("GET "+PathReset+"{secret}", s.handleSignupPage)
	mux.HandleFunc("POST "+PathReset+"{secret}", s.handleSignupForm)
}

func (s *API) handleWhoami(w http.ResponseWriter, _ *http.Request, c *caller) {
	writeJSON(w, http.StatusOK, WhoamiResponse{User: c.Name, Kind: c.Kind, Type: c.UserType, Roles: c.Roles, Permissions: permissions(c)})
}

func (s *API) handleListUsers(w http.ResponseWriter, r *http.Request, _ *caller) {
	users, err := cluster.ListResources(r.Context(), s.cfg.Clients, resources.KindUser, "")
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	out := make([]UserInfo, 0, len(users))
	for _, u := range users {
		spec := u.Spec.(*resources.UserSpec)
		out = append(out, UserInfo{Name: u.Metadata.Name, Type: spec.Type, Roles: spec.Roles, FullName: spec.FullName})
	}
	writeJSON(w, http.StatusOK, out)
}

// handleInvite makes an invitation for a new user: the user is created
// when they set their password through it.
func (s *API) handleInvite(w http.ResponseWriter, r *http.Request, c *caller) {
	var req InviteRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	ctx := r.Context()
	if req.TTL == 0 {
		req.TTL = identity.DefaultInviteTTL
	}
	err := resources.ValidUserName(req.Name)
	switch {
	case err != nil:
		err = refuse("%v", err)
	case req.TTL < time.Minute || req.TTL > identity.MaxInviteTTL:
		err = refuse("an invitation lasts between 1m and %s, not %s", identity.MaxInviteTTL, req.TTL)
	case len(req.Roles) == 0:
		err = refuse("an invitation needs at least one role (--roles)")
	}
	for _, role := range req.Roles {
		if err == nil {
			err = s.roleExists(ctx, role)
		}
	}
	if err == nil {
		if _, getErr := cluster.GetResource(ctx, s.cfg.Clients, resources.KindUser, req.Name); getErr == nil {
			err = refuse("user %q already exists", req.Name)
		} else if !errors.Is(getErr, cluster.ErrNotFound) {
			err = getErr
		}
	}
	var resp *InviteResponse
	if err == nil {
		resp, err = s.ticket(ctx, cluster.Ticket{Kind: cluster.TicketInvite, User: req.Name, Roles: req.Roles, CreatedBy: c.Name}, req.TTL)
	}
	if err != nil {
		s.answer(w, nil, err)
		return
	}
	s.audit(r, c.Name, "G1010I", "user.invited", fmt.Sprintf("invited %s with roles %v", req.Name, req.Roles), map[string]string{"user": req.Name})
	writeJSON(w, http.StatusOK, resp)
}

// ticket stores a new invitation or reset for t.User, replacing the
// user's older ones, and returns its link.
func (s *API) ticket(ctx context.Context, t cluster.Ticket, ttl time.Duration) (*InviteResponse, error) {
	if err := cluster.DeleteUserSecrets(ctx, s.cfg.Clients, t.User, cluster.TicketInvite, cluster.TicketReset); err != nil {
		return nil, err
	}
	secret, err := identity.NewSecret()
	if err != nil {
		return nil, err
	}
	if t.OTPSecret, err = identity.NewOTPSecret(); err != nil {
		return nil, err
	}
	t.Created = s.cfg.Now().UTC()
	t.Expires = t.Created.Add(ttl)
	if err := cluster.PutTicket(ctx, s.cfg.Clients, identity.SecretHash(secret), t); err != nil {
		return nil, err
	}
	path := PathSignup
	if t.Kind == cluster.TicketReset {
		path = PathReset
	}
	return &InviteResponse{URL: "https://" + s.publicAddr(ctx, Port) + path + secret, TTL: ttl, Expires: t.Expires}, nil
}

// publicAddr is where users reach this service: the auth gateway's first
// web address when one is set, else this master's address, on port.
func (s *API) publicAddr(ctx context.Context, port int) string {
	gw, err := cluster.GetResource(ctx, s.cfg.Clients, resources.KindAuthGateway, resources.KindAuthGateway)
	if err == nil {
		spec := gw.Spec.(*resources.AuthGatewaySpec)
		for _, addrs := range [][]string{spec.WebPublicAddr, spec.PublicAddr} {
			if len(addrs) > 0 {
				if _, _, err := net.SplitHostPort(addrs[0]); err == nil {
					return addrs[0]
				}
				return net.JoinHostPort(addrs[0], strconv.Itoa(port))
			}
		}
	}
	return net.JoinHostPort(s.cfg.Self.IP.String(), strconv.Itoa(port))
}

func (s *API) handleReset(w http.ResponseWriter, r *http.Request, c *caller) {
	name := r.PathValue("name")
	var req InviteRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	if req.TTL == 0 {
		req.TTL = identity.DefaultInviteTTL
	}
	ctx := r.Context()
	u, err := cluster.GetResource(ctx, s.cfg.Clients, resources.KindUser, name)
	switch {
	case errors.Is(err, cluster.ErrNotFound):
		err = notFound("user %q does not exist", name)
	case err != nil:
	case u.Spec.(*resources.UserSpec).Type == resources.UserAgent:
		err = refuse("%s is an agent user: it has API tokens, not a password", name)
	case req.TTL < time.Minute || req.TTL > identity.MaxResetTTL:
		err = refuse("a reset link lasts between 1m and %s, not %s", identity.MaxResetTTL, req.TTL)
	}
	var resp *InviteResponse
	if err == nil {
		// The old password stops working now, not when the link is used:
		// a reset is asked for when it may be known to someone else.
		err = cluster.SaveCredentials(ctx, s.cfg.Clients, name, cluster.Credentials{})
	}
	if err == nil {
		err = cluster.DeleteUserSecrets(ctx, s.cfg.Clients, name, cluster.TicketSession)
	}
	if err == nil {
		resp, err = s.ticket(ctx, cluster.Ticket{Kind: cluster.TicketReset, User: name, CreatedBy: c.Name}, req.TTL)
	}
	if err != nil {
		s.answer(w, nil, err)
		return
	}
	s.audit(r, c.Name, "G1013I", "user.reset", "reset the password of "+name, map[string]string{"user": name})
	writeJSON(w, http.StatusOK, resp)
}

func (s *API) handleDeleteUser(w http.ResponseWriter, r *http.Request, c *caller) {
	name := r.PathValue("name")
	err := s.deleteUser(r.Context(), name)
	if err != nil {
		s.answer(w, nil, err)
		return
	}
	s.audit(r, c.Name, "G2000I", "user.deleted", "deleted user "+name, map[string]string{"user": name})
	w.WriteHeader(http.StatusNoContent)
}

// deleteUser removes the user and everything that authenticates them.
func (s *API) deleteUser(ctx context.Context, name string) error {
	err := cluster.DeleteResource(ctx, s.cfg.Clients, resources.KindUser, name)
	if errors.Is(err, cluster.ErrNotFound) {
		return notFound("user %q does not exist", name)
	}
	if err != nil {
		return err
	}
	return cluster.DeleteUserSecrets(ctx, s.cfg.Clients, name, "credentials", resources.KindToken,
		cluster.TicketInvite, cluster.TicketReset, cluster.TicketSession)
}

func (s *API) handleTicketInfo(w http.ResponseWriter, r *http.Request) {
	info, err := s.ticketInfo(r.Context(), r.PathValue("secret"))
	if err != nil {
		s.answer(w, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (s *API) ticketInfo(ctx context.Context, secret string) (*TicketInfo, error) {
	t, _, err := s.findTicket(ctx, secret)
	if err != nil {
		return nil, err
	}
	info := &TicketInfo{Kind: t.Kind, User: t.User, Expires: t.Expires, SecondFactor: s.secondFactor(ctx)}
	if info.SecondFactor == resources.SecondFactorOTP {
		info.OTPSecret, info.OTPURL = t.OTPSecret, identity.OTPURL(s.cfg.Self.ClusterName, t.User, t.OTPSecret)
	}
	return info, nil
}

// secondFactor is what the cluster asks of users logging in besides
// their password: the authpreference's, the auth gateway's when it sets
// one, else off.
func (s *API) secondFactor(ctx context.Context) string {
	sf := resources.SecondFactorOff
	if p, err := cluster.GetResource(ctx, s.cfg.Clients, resources.KindAuthPreference, resources.KindAuthPreference); err == nil {
		if v := p.Spec.(*resources.AuthPreferenceSpec).SecondFactor; v != "" {
			sf = v
		}
	}
	if gw, err := cluster.GetResource(ctx, s.cfg.Clients, resources.KindAuthGateway, resources.KindAuthGateway); err == nil {
		if a := gw.Spec.(*resources.AuthGatewaySpec).Authentication; a != nil && a.SecondFactor != "" {
			sf = a.SecondFactor
		}
	}
	return sf
}

// findTicket finds the invitation or reset a link's secret stands for.
func (s *API) findTicket(ctx context.Context, secret string) (cluster.Ticket, string, error) {
	hash := identity.SecretHash(secret)
	for _, kind := range []string{cluster.TicketInvite, cluster.TicketReset} {
		t, err := cluster.GetTicket(ctx, s.cfg.Clients, kind, hash, s.cfg.Now())
		if err == nil {
			return t, hash, nil
		}
		if !errors.Is(err, cluster.ErrNotFound) {
			return t, hash, err
		}
	}
	return cluster.Ticket{}, hash, notFound("this link is not valid: it has expired, was used already, or was replaced by a newer one")
}

func (s *API) handleCompleteTicket(w http.ResponseWriter, r *http.Request) {
	var req PasswordRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	sess, err := s.completeTicket(r, r.PathValue("secret"), req.Password, req.OTP)
	if err != nil {
		s.answer(w, nil, err)
		return
	}
	s.setSessionCookie(w, sess)
	writeJSON(w, http.StatusOK, sess)
}

// completeTicket sets the password an invitation or reset asked for (the
// invitation's user is created now) and logs the user in.
func (s *API) completeTicket(r *http.Request, secret, password, otp string) (*SessionResponse, error) {
	ctx := r.Context()
	t, hash, err := s.findTicket(ctx, secret)
	if err != nil {
		return nil, err
	}
	if err := resources.ValidPassword(password); err != nil {
		return nil, refuse("%v", err)
	}
	creds := cluster.Credentials{}
	if s.secondFactor(ctx) == resources.SecondFactorOTP {
		step, ok := identity.CheckOTP(t.OTPSecret, otp, s.cfg.Now(), 0)
		if !ok {
			return nil, refuse("the one-time code is wrong or missing: add the key to an authenticator app and enter the code it shows")
		}
		creds.OTPSecret, creds.OTPLastStep = t.OTPSecret, step
	}
	pwHash, err := identity.HashPassword(password)
	if err != nil {
		return nil, err
	}
	// The ticket goes first: a second use of the same link finds nothing,
	// even when it races this one.
	if err := cluster.DeleteTicket(ctx, s.cfg.Clients, t.Kind, hash); err != nil {
		return nil, err
	}
	event, code := "user.reset.completed", "G1014I"
	if t.Kind == cluster.TicketInvite {
		var roles []string
		for _, role := range t.Roles { // a role deleted since the invitation is not given
			if s.roleExists(ctx, role) == nil {
				roles = append(roles, role)
			}
		}
		u := resources.Resource{Kind: resources.KindUser, Version: resources.Version(resources.KindUser),
			Metadata: resources.Metadata{Name: t.User}, Spec: &resources.UserSpec{Type: resources.UserAdmin, Roles: roles}}
		if err := cluster.PutResource(ctx, s.cfg.Clients, u, true); err != nil {
			if errors.Is(err, cluster.ErrExists) {
				return nil, refuse("user %q already exists", t.User)
			}
			return nil, err
		}
		event, code = "user.created", "G1000I"
	}
	creds.PasswordHash = pwHash
	if err := cluster.SaveCredentials(ctx, s.cfg.Clients, t.User, creds); err != nil {
		return nil, err
	}
	s.audit(r, t.User, code, event, t.Kind+" completed by "+t.User, map[string]string{"user": t.User})
	return s.newSession(ctx, t.User)
}

// newSession starts a session for user, as long as their roles allow.
func (s *API) newSession(ctx context.Context, user string) (*SessionResponse, error) {
	c, err := s.userCaller(ctx, user, "")
	if err != nil {
		return nil, err
	}
	secret, err := identity.NewSecret()
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	t := cluster.Ticket{Kind: cluster.TicketSession, User: user, Created: now, Expires: now.Add(identity.SessionTTL(c.specs))}
	if err := cluster.PutTicket(ctx, s.cfg.Clients, identity.SecretHash(secret), t); err != nil {
		return nil, err
	}
	return &SessionResponse{User: user, Token: secret, Expires: t.Expires}, nil
}

func (s *API) setSessionCookie(w http.ResponseWriter, sess *SessionResponse) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: sess.Token, Path: "/", Expires: sess.Expires,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	setCSRFCookie(w, sess)
}

// loginLimiter counts failed logins per source address: past
// failuresPerMinute in a minute, that address waits for the minute to
// end, whichever users it tries.
type loginLimiter struct {
	mu     sync.Mutex
	window time.Time
	counts map[string]int
}

const failuresPerMinute = 20

func (l *loginLimiter) allow(from string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.window) >= time.Minute {
		l.window, l.counts = now, map[string]int{}
	}
	return l.counts[from] < failuresPerMinute
}

func (l *loginLimiter) fail(from string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts != nil {
		l.counts[from]++
	}
}

func (s *API) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req LoginRequest
	if crossSite(r) {
		s.fail(w, http.StatusForbidden, errors.New("a login from another site's page is refused"))
		return
	}
	if err := decode(r, &req); err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	from, _, _ := net.SplitHostPort(r.RemoteAddr)
	if !s.logins.allow(from, s.cfg.Now()) {
		s.audit(r, req.User, "G9001W", "user.login.throttled", "too many failed logins from "+from, nil)
		s.fail(w, http.StatusTooManyRequests, errors.New("too many failed logins from this address: try again in a minute"))
		return
	}
	sess, err := s.login(r.Context(), req)
	if err != nil {
		s.logins.fail(from)
		s.audit(r, req.User, "T1000W", "user.login.failed", err.Error(), nil)
		s.fail(w, http.StatusUnauthorized, err)
		return
	}
	s.audit(r, req.User, "T1000I", "user.login", "logged in", nil)
	s.setSessionCookie(w, sess)
	writeJSON(w, http.StatusOK, sess)
}

// errBadLogin is every failed login's answer, whatever failed, so that
// it tells nothing about which users exist.
var errBadLogin = errors.New("invalid user name, password or one-time code")

func (s *API) login(ctx context.Context, req LoginRequest) (*SessionResponse, error) {
	u, err := cluster.GetResource(ctx, s.cfg.Clients, resources.KindUser, req.User)
	if errors.Is(err, cluster.ErrNotFound) {
		identity.DummyCheck(req.Password)
		return nil, errBadLogin
	}
	if err != nil {
		return nil, err
	}
	if u.Spec.(*resources.UserSpec).Type == resources.UserAgent {
		return nil, errors.New("agent users cannot log in: they use API tokens")
	}
	cr, err := cluster.LoadCredentials(ctx, s.cfg.Clients, req.User)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	if now.Before(cr.LockedUntil) {
		identity.DummyCheck(req.Password)
		return nil, fmt.Errorf("user %s is locked after %d failed logins until %s", req.User, identity.MaxFailures, cr.LockedUntil.Format(time.RFC3339))
	}
	pwOK, otpOK := identity.CheckPassword(cr.PasswordHash, req.Password), true
	if s.secondFactor(ctx) == resources.SecondFactorOTP {
		if cr.OTPSecret == "" && pwOK {
			return nil, fmt.Errorf("the cluster asks for a one-time code and %s has not enrolled one: `gravity users reset %s` makes a link that does", req.User, req.User)
		}
		var step int64
		if step, otpOK = identity.CheckOTP(cr.OTPSecret, req.OTP, now, cr.OTPLastStep); otpOK {
			cr.OTPLastStep = step
		}
	}
	if !pwOK || !otpOK {
		cr.Failures++
		if cr.Failures >= identity.MaxFailures {
			cr.Failures, cr.LockedUntil = 0, now.Add(identity.LockDuration)
		}
		if err := cluster.SaveCredentials(ctx, s.cfg.Clients, req.User, cr); err != nil {
			return nil, err
		}
		return nil, errBadLogin
	}
	if cr.Failures > 0 || cr.OTPSecret != "" {
		cr.Failures = 0
		if err := cluster.SaveCredentials(ctx, s.cfg.Clients, req.User, cr); err != nil {
			return nil, err
		}
	}
	return s.newSession(ctx, req.User)
}

func (s *API) handleLogout(w http.ResponseWriter, r *http.Request, c *caller) {
	if c.session == "" {
		s.fail(w, http.StatusBadRequest, errors.New("this request has no session to end"))
		return
	}
	if err := cluster.DeleteTicket(r.Context(), s.cfg.Clients, cluster.TicketSession, c.session); err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	clearCSRFCookie(w)
	s.audit(r, c.Name, "T1001I", "user.logout", "logged out", nil)
	w.WriteHeader(http.StatusNoContent)
}

func (s *API) handleAudit(w http.ResponseWriter, r *http.Request, _ *caller) {
	events, err := cluster.Events(r.Context(), s.cfg.Clients)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, events)
}
