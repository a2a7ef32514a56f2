// Package resources is the cluster's configuration resources as `gravity
// resource` reads them from files: Gravity's YAML documents of `kind`,
// `version`, `metadata` and `spec` (users, API tokens, roles, the auth
// gateway, the auth preference, the web certificate and the OIDC and
// GitHub connectors). It decodes and validates; storing them is the
// cluster package's, enforcing them the cluster service's.
//
// Contract: Decode returns every resource of a file or an error that names
// the file, the line and the field; it never returns a resource that
// failed validation.
package resources

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Kinds, as a file names them (canonical form).
const (
	KindUser           = "user"
	KindToken          = "token"
	KindRole           = "role"
	KindAuthGateway    = "authgateway"
	KindAuthPreference = "authpreference"
	KindTLSKeyPair     = "tlskeypair"
	KindOIDC           = "oidc"
	KindGithub         = "github"
)

// aliases are the other names Gravity accepted for each kind.
var aliases = map[string]string{
	"user": KindUser, "users": KindUser,
	"token": KindToken, "tokens": KindToken,
	"role": KindRole, "roles": KindRole,
	"authgateway": KindAuthGateway, "authgateways": KindAuthGateway, "gw": KindAuthGateway,
	"authpreference": KindAuthPreference, "authpreferences": KindAuthPreference,
	"cluster_auth_preference": KindAuthPreference, "cap": KindAuthPreference,
	"tlskeypair": KindTLSKeyPair, "tlskeypairs": KindTLSKeyPair, "tls": KindTLSKeyPair,
	"oidc": KindOIDC, "oidcs": KindOIDC,
	"github": KindGithub, "githubs": KindGithub,
}

// CanonicalKind is kind's canonical name ("users" → "user"); ok is false
// for a kind that is not known.
func CanonicalKind(kind string) (string, bool) {
	k, ok := aliases[strings.ToLower(strings.TrimSpace(kind))]
	return k, ok
}

// Kinds lists the canonical kinds.
func Kinds() []string {
	return []string{KindUser, KindToken, KindRole, KindAuthGateway, KindAuthPreference, KindTLSKeyPair, KindOIDC, KindGithub}
}

// versions is the one version each kind is written in.
var versions = map[string]string{
	KindUser: "v2", KindToken: "v2", KindRole: "v3", KindAuthGateway: "v1", KindAuthPreference: "v2",
	KindTLSKeyPair: "v2", KindOIDC: "v2", KindGithub: "v3",
}

// Version is the version a kind's documents carry.
func Version(kind string) string { return versions[kind] }

// Resource is one document.
type Resource struct {
	Kind     string   `json:"kind" yaml:"kind"`
	Version  string   `json:"version" yaml:"version"`
	Metadata Metadata `json:"metadata" yaml:"metadata"`
	// Spec is the kind's spec type (a pointer: *UserSpec for "user", …).
	Spec any `json:"spec" yaml:"spec"`
}

// Metadata is every kind's.
type Metadata struct {
	Name        string            `json:"name" yaml:"name"`
	Description string            `json:"description,omitempty" yaml:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	// Expires ends a token (or any resource that honours it).
	Expires *time.Time `json:"expires,omitempty" yaml:"expires,omitempty"`
}

// User types.
const (
	UserRegular = "regular"
	UserAdmin   = "admin"
	UserAgent   = "agent"
)

// UserSpec is a user. Password is only ever in a file or a request: the
// cluster keeps its hash, elsewhere.
type UserSpec struct {
	Type     string   `json:"type" yaml:"type"`
	Roles    []string `json:"roles" yaml:"roles"`
	Password string   `json:"password,omitempty" yaml:"password,omitempty"`
	FullName string   `json:"full_name,omitempty" yaml:"full_name,omitempty"`
}

// TokenSpec is an API token: its value is the resource's name.
type TokenSpec struct {
	User string `json:"user" yaml:"user"`
}

// RoleSpec is a role as Teleport's v3 roles: what it allows and denies.
type RoleSpec struct {
	Allow   Conditions  `json:"allow" yaml:"allow"`
	Deny    Conditions  `json:"deny,omitempty" yaml:"deny,omitempty"`
	Options RoleOptions `json:"options,omitempty" yaml:"options,omitempty"`
}

// Conditions are a role's grants (or denials).
type Conditions struct {
	Logins           []string          `json:"logins,omitempty" yaml:"logins,omitempty"`
	NodeLabels       map[string]string `json:"node_labels,omitempty" yaml:"node_labels,omitempty"`
	Namespaces       []string          `json:"namespaces,omitempty" yaml:"namespaces,omitempty"`
	KubernetesGroups []string          `json:"kubernetes_groups,omitempty" yaml:"kubernetes_groups,omitempty"`
	Rules            []Rule            `json:"rules,omitempty" yaml:"rules,omitempty"`
}

// Rule grants verbs on resources ("*" for all).
type Rule struct {
	Resources []string `json:"resources" yaml:"resources"`
	Verbs     []string `json:"verbs" yaml:"verbs"`
}

// RoleOptions bound what a role's sessions may do.
type RoleOptions struct {
	// MaxSessionTTL is a Go duration ("30h").
	MaxSessionTTL string `json:"max_session_ttl,omitempty" yaml:"max_session_ttl,omitempty"`
}

// AuthGatewaySpec is where users reach the cluster from outside: the
// addresses go into the web certificate and the endpoints `gravity status`
// shows.
type AuthGatewaySpec struct {
	PublicAddr           []string            `json:"public_addr,omitempty" yaml:"public_addr,omitempty"`
	WebPublicAddr        []string            `json:"web_public_addr,omitempty" yaml:"web_public_addr,omitempty"`
	SSHPublicAddr        []string            `json:"ssh_public_addr,omitempty" yaml:"ssh_public_addr,omitempty"`
	KubernetesPublicAddr []string            `json:"kubernetes_public_addr,omitempty" yaml:"kubernetes_public_addr,omitempty"`
	Authentication       *AuthPreferenceSpec `json:"authentication,omitempty" yaml:"authentication,omitempty"`
}

// Second factors.
const (
	SecondFactorOff = "off"
	SecondFactorOTP = "otp"
)

// AuthPreferenceSpec is how users log in.
type AuthPreferenceSpec struct {
	Type          string `json:"type,omitempty" yaml:"type,omitempty"`
	SecondFactor  string `json:"second_factor,omitempty" yaml:"second_factor,omitempty"`
	ConnectorName string `json:"connector_name,omitempty" yaml:"connector_name,omitempty"`
}

// TLSKeyPairSpec replaces the web certificate (:3009, :32009).
type TLSKeyPairSpec struct {
	PrivateKey string `json:"private_key" yaml:"private_key"`
	Cert       string `json:"cert" yaml:"cert"`
}

// OIDCSpec is an OpenID Connect connector.
type OIDCSpec struct {
	IssuerURL     string         `json:"issuer_url" yaml:"issuer_url"`
	ClientID      string         `json:"client_id" yaml:"client_id"`
	ClientSecret  string         `json:"client_secret" yaml:"client_secret"`
	RedirectURL   string         `json:"redirect_url" yaml:"redirect_url"`
	Display       string         `json:"display,omitempty" yaml:"display,omitempty"`
	Scope         []string       `json:"scope,omitempty" yaml:"scope,omitempty"`
	ClaimsToRoles []ClaimMapping `json:"claims_to_roles" yaml:"claims_to_roles"`
}

// ClaimMapping gives the roles to users whose claim has value.
type ClaimMapping struct {
	Claim string   `json:"claim" yaml:"claim"`
	Value string   `json:"value" yaml:"value"`
	Roles []string `json:"roles" yaml:"roles"`
}

// GithubSpec is a GitHub connector.
type GithubSpec struct {
	ClientID      string        `json:"client_id" yaml:"client_id"`
	ClientSecret  string        `json:"client_secret" yaml:"client_secret"`
	RedirectURL   string        `json:"redirect_url" yaml:"redirect_url"`
	Display       string        `json:"display,omitempty" yaml:"display,omitempty"`
	TeamsToLogins []TeamMapping `json:"teams_to_logins" yaml:"teams_to_logins"`
}

// TeamMapping gives logins to a GitHub team's members.
type TeamMapping struct {
	Organization string   `json:"organization" yaml:"organization"`
	Team         string   `json:"team" yaml:"team"`
	Logins       []string `json:"logins" yaml:"logins"`
}

// newSpec is an empty spec of kind.
func newSpec(kind string) any {
	switch kind {
	case KindUser:
		return &UserSpec{}
	case KindToken:
		return &TokenSpec{}
	case KindRole:
		return &RoleSpec{}
	case KindAuthGateway:
		return &AuthGatewaySpec{}
	case KindAuthPreference:
		return &AuthPreferenceSpec{}
	case KindTLSKeyPair:
		return &TLSKeyPairSpec{}
	case KindOIDC:
		return &OIDCSpec{}
	case KindGithub:
		return &GithubSpec{}
	}
	return nil
}

// UnmarshalJSON reads Spec as the kind's spec type.
func (r *Resource) UnmarshalJSON(data []byte) error {
	var raw struct {
		Kind     string          `json:"kind"`
		Version  string          `json:"version"`
		Metadata Metadata        `json:"metadata"`
		Spec     json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	kind, ok := CanonicalKind(raw.Kind)
	if !ok {
		return fmt.Errorf("unknown kind %q", raw.Kind)
	}
	r.Kind, r.Version, r.Metadata, r.Spec = kind, raw.Version, raw.Metadata, newSpec(kind)
	if len(raw.Spec) == 0 || string(raw.Spec) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw.Spec))
	dec.DisallowUnknownFields()
	if err := dec.Decode(r.Spec); err != nil {
		return fmt.Errorf("%s spec: %w", kind, err)
	}
	return nil
}
