package clusterapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/identity"
	"github.com/opengravity/gravity/internal/resources"
)

// PathResources is `gravity resource`'s: GET {kind}[?name=&user=], POST
// ResourcesRequest, DELETE {kind}/{name}.
const PathResources = "/v1/resources"

// ResourcesRequest creates (Force: creates or replaces) resources, all or
// none.
type ResourcesRequest struct {
	Resources []resources.Resource `json:"resources"`
	Force     bool                 `json:"force,omitempty"`
}

// ResourcesResponse says what was done, one line per resource.
type ResourcesResponse struct {
	Messages []string `json:"messages"`
}

// singletons are kinds the cluster has one of, under a fixed name.
var singletons = map[string]string{
	resources.KindAuthGateway:    resources.KindAuthGateway,
	resources.KindAuthPreference: resources.KindAuthPreference,
	resources.KindTLSKeyPair:     "keypair",
}

// permission is the rule resource that governs kind.
func permission(kind string) string {
	switch kind {
	case resources.KindOIDC, resources.KindGithub:
		return "auth_connector"
	}
	return kind
}

func (s *API) resourceRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+PathResources+"/{kind}", s.authed("", "", s.handleGetResources))
	mux.HandleFunc("POST "+PathResources, s.authed("", "", s.handleCreateResources))
	mux.HandleFunc("DELETE "+PathResources+"/{kind}/{name}", s.authed("", "", s.handleDeleteResource))
}

func (s *API) handleGetResources(w http.ResponseWriter, r *http.Request, c *caller) {
	kind, ok := resources.CanonicalKind(r.PathValue("kind"))
	if !ok {
		s.fail(w, http.StatusBadRequest, fmt.Errorf("unknown resource kind %q (one of %v)", r.PathValue("kind"), resources.Kinds()))
		return
	}
	name, user := r.URL.Query().Get("name"), r.URL.Query().Get("user")
	verb := "list"
	if name != "" {
		verb = "read"
	}
	if !s.can(w, r, c, permission(kind), verb) {
		return
	}
	if kind == resources.KindToken && user == "" {
		s.fail(w, http.StatusBadRequest, errors.New("please specify user via --user flag"))
		return
	}
	if n, ok := singletons[kind]; ok && name != "" {
		name = n
	}
	var list []resources.Resource
	var err error
	switch {
	case kind == resources.KindRole && identity.IsBuiltin(name):
		for _, r := range builtinRoles() {
			if r.Metadata.Name == name {
				list = append(list, r)
			}
		}
	case name != "":
		var one resources.Resource
		if one, err = cluster.GetResource(r.Context(), s.cfg.Clients, kind, name); err == nil {
			list = []resources.Resource{one}
		}
	default:
		list, err = cluster.ListResources(r.Context(), s.cfg.Clients, kind, user)
	}
	if errors.Is(err, cluster.ErrNotFound) {
		s.fail(w, http.StatusNotFound, fmt.Errorf("%s %q not found", kind, name))
		return
	}
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	if kind == resources.KindRole && name == "" {
		list = append(builtinRoles(), list...)
	}
	for i := range list {
		list[i] = redact(list[i])
	}
	writeJSON(w, http.StatusOK, list)
}

func builtinRoles() []resources.Resource {
	var out []resources.Resource
	for name, spec := range identity.Builtin() {
		out = append(out, resources.Resource{Kind: resources.KindRole, Version: resources.Version(resources.KindRole),
			Metadata: resources.Metadata{Name: name, Labels: map[string]string{"gravitational.io/system": "true"}}, Spec: &spec})
	}
	return out
}

// redact leaves out what no listing shows: private keys and client
// secrets (API tokens are shown, as Gravity did: their name is the token).
func redact(r resources.Resource) resources.Resource {
	switch s := r.Spec.(type) {
	case *resources.TLSKeyPairSpec:
		cp := *s
		cp.PrivateKey = ""
		r.Spec = &cp
	case *resources.OIDCSpec:
		cp := *s
		cp.ClientSecret = ""
		r.Spec = &cp
	case *resources.GithubSpec:
		cp := *s
		cp.ClientSecret = ""
		r.Spec = &cp
	}
	return r
}

func (s *API) handleCreateResources(w http.ResponseWriter, r *http.Request, c *caller) {
	var req ResourcesRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	for _, res := range req.Resources {
		if !s.can(w, r, c, permission(res.Kind), "create") || (req.Force && !s.can(w, r, c, permission(res.Kind), "update")) {
			return
		}
	}
	ctx := r.Context()
	ordered, err := s.checkResources(ctx, req)
	if err != nil {
		s.answer(w, nil, err)
		return
	}
	var msgs []string
	for _, res := range ordered {
		if err := s.putResource(ctx, res, req.Force); err != nil {
			s.answer(w, ResourcesResponse{Messages: msgs}, err)
			return
		}
		msg := fmt.Sprintf("Created %s %q", res.Kind, res.Metadata.Name)
		if t, ok := res.Spec.(*resources.TokenSpec); ok {
			msg = fmt.Sprintf("Created token for user %q", t.User) // never the token itself
		}
		msgs = append(msgs, msg)
		s.audit(r, c.Name, "G1000I", res.Kind+".created", msg, map[string]string{"kind": res.Kind})
	}
	writeJSON(w, http.StatusOK, ResourcesResponse{Messages: msgs})
}

// checkResources checks everything that depends on the cluster before
// anything is written, and orders the resources so that what others
// name (roles, then users) is written first.
func (s *API) checkResources(ctx context.Context, req ResourcesRequest) ([]resources.Resource, error) {
	if len(req.Resources) == 0 {
		return nil, refuse("no resources in the request")
	}
	batchUsers := map[string]bool{}
	batchRoles := map[string]bool{}
	for _, res := range req.Resources {
		switch res.Kind {
		case resources.KindUser:
			batchUsers[res.Metadata.Name] = true
		case resources.KindRole:
			batchRoles[res.Metadata.Name] = true
		}
	}
	masters, err := cluster.MasterIPs(ctx, s.cfg.Clients)
	if err != nil {
		return nil, err
	}
	var errs []error
	for i := range req.Resources {
		res := &req.Resources[i]
		if n, ok := singletons[res.Kind]; ok {
			res.Metadata.Name = n
		}
		if fe := resources.Validate(*res); len(fe) > 0 {
			errs = append(errs, refuse("%s %q: %v", res.Kind, res.Metadata.Name, errors.Join(asErrors(fe)...)))
			continue
		}
		if _, ok := singletons[res.Kind]; !ok && !req.Force {
			_, err := cluster.GetResource(ctx, s.cfg.Clients, res.Kind, res.Metadata.Name)
			if err == nil {
				errs = append(errs, refuse("%s %q already exists: --force replaces it", res.Kind, res.Metadata.Name))
				continue
			}
			if !errors.Is(err, cluster.ErrNotFound) {
				return nil, err
			}
		}
		switch spec := res.Spec.(type) {
		case *resources.UserSpec:
			for _, role := range spec.Roles {
				if !batchRoles[role] {
					if err := s.roleExists(ctx, role); err != nil {
						errs = append(errs, fmt.Errorf("user %q: %w", res.Metadata.Name, err))
					}
				}
			}
		case *resources.TokenSpec:
			if res.Metadata.Expires != nil && !s.cfg.Now().Before(*res.Metadata.Expires) {
				errs = append(errs, refuse("token for user %q: it expired at %s", spec.User, res.Metadata.Expires))
			}
			if !batchUsers[spec.User] {
				if _, err := cluster.GetResource(ctx, s.cfg.Clients, resources.KindUser, spec.User); errors.Is(err, cluster.ErrNotFound) {
					errs = append(errs, refuse("token for user %q: the user does not exist", spec.User))
				} else if err != nil {
					return nil, err
				}
			}
		case *resources.TLSKeyPairSpec:
			if err := coversMasters(spec, masters, s.gatewayAddrs(ctx, req.Resources), s.cfg.Now); err != nil {
				errs = append(errs, refuse("tlskeypair: %v", err))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	order := []string{resources.KindRole, resources.KindUser}
	out := slices.Clone(req.Resources)
	slices.SortStableFunc(out, func(a, b resources.Resource) int {
		rank := func(k string) int {
			if i := slices.Index(order, k); i >= 0 {
				return i
			}
			return len(order)
		}
		return rank(a.Kind) - rank(b.Kind)
	})
	return out, nil
}

func asErrors(fe []resources.FieldError) []error {
	out := make([]error, len(fe))
	for i, e := range fe {
		out[i] = e
	}
	return out
}

// coversMasters checks that a web certificate is current and valid for
// every master's address, or else for every host the auth gateway
// publishes (the names browsers reach the cluster at; it is served to
// those who name them).
func coversMasters(spec *resources.TLSKeyPairSpec, masters []net.IP, gateway []string, now func() time.Time) error {
	pair, err := tls.X509KeyPair([]byte(spec.Cert), []byte(spec.PrivateKey))
	if err != nil {
		return err
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return err
	}
	t := now()
	if t.Before(leaf.NotBefore) || t.After(leaf.NotAfter) {
		return fmt.Errorf("the certificate is valid from %s to %s, not now", leaf.NotBefore, leaf.NotAfter)
	}
	var missing []string
	for _, ip := range masters {
		if leaf.VerifyHostname(ip.String()) != nil {
			missing = append(missing, ip.String())
		}
	}
	if len(missing) == 0 {
		return nil
	}
	for _, a := range gateway {
		host := a
		if h, _, err := net.SplitHostPort(a); err == nil {
			host = h
		}
		if leaf.VerifyHostname(host) != nil {
			return fmt.Errorf("the certificate covers neither every master (not %v) nor every public address of the auth gateway (not %s)", missing, host)
		}
	}
	if len(gateway) == 0 {
		return fmt.Errorf("the certificate does not cover the masters' addresses %v (and the auth gateway has no public address)", missing)
	}
	return nil
}

// gatewayAddrs are the auth gateway's public addresses, the batch's own
// authgateway first.
func (s *API) gatewayAddrs(ctx context.Context, batch []resources.Resource) []string {
	spec := (*resources.AuthGatewaySpec)(nil)
	for _, r := range batch {
		if gw, ok := r.Spec.(*resources.AuthGatewaySpec); ok {
			spec = gw
		}
	}
	if spec == nil {
		gw, err := cluster.GetResource(ctx, s.cfg.Clients, resources.KindAuthGateway, resources.KindAuthGateway)
		if err != nil {
			return nil
		}
		spec = gw.Spec.(*resources.AuthGatewaySpec)
	}
	return append(append([]string{}, spec.PublicAddr...), spec.WebPublicAddr...)
}

// putResource writes one checked resource: a user's password as its
// hash, alongside.
func (s *API) putResource(ctx context.Context, res resources.Resource, force bool) error {
	create := !force
	if _, ok := singletons[res.Kind]; ok {
		create = false
	}
	u, isUser := res.Spec.(*resources.UserSpec)
	var pwHash string
	if isUser && u.Password != "" {
		var err error
		if pwHash, err = identity.HashPassword(u.Password); err != nil {
			return refuse("user %q: %v", res.Metadata.Name, err)
		}
	}
	if err := cluster.PutResource(ctx, s.cfg.Clients, res, create); err != nil {
		if errors.Is(err, cluster.ErrExists) {
			return refuse("%s %q already exists: --force replaces it", res.Kind, res.Metadata.Name)
		}
		return err
	}
	if pwHash != "" {
		return cluster.SaveCredentials(ctx, s.cfg.Clients, res.Metadata.Name, cluster.Credentials{PasswordHash: pwHash})
	}
	return nil
}

func (s *API) handleDeleteResource(w http.ResponseWriter, r *http.Request, c *caller) {
	kind, ok := resources.CanonicalKind(r.PathValue("kind"))
	if !ok {
		s.fail(w, http.StatusBadRequest, fmt.Errorf("unknown resource kind %q (one of %v)", r.PathValue("kind"), resources.Kinds()))
		return
	}
	name := r.PathValue("name")
	if !s.can(w, r, c, permission(kind), "delete") {
		return
	}
	if n, ok := singletons[kind]; ok {
		name = n
	}
	var err error
	switch {
	case kind == resources.KindRole && identity.IsBuiltin(name):
		err = refuse("%s is a built-in role", name)
	case kind == resources.KindUser:
		err = s.deleteUser(r.Context(), name)
	default:
		err = cluster.DeleteResource(r.Context(), s.cfg.Clients, kind, name)
		if errors.Is(err, cluster.ErrNotFound) {
			err = notFound("%s %q not found", kind, name)
		}
	}
	if err != nil {
		s.answer(w, nil, err)
		return
	}
	msg := fmt.Sprintf("%s %q has been deleted", kind, name)
	if kind == resources.KindToken {
		msg = "token has been deleted"
	}
	s.audit(r, c.Name, "G2000I", kind+".deleted", msg, map[string]string{"kind": kind})
	writeJSON(w, http.StatusOK, ResourcesResponse{Messages: []string{msg}})
}
