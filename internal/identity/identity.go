// Package identity is who may do what in the cluster API: the built-in
// roles, the check of a caller's roles against a permission (a verb on a
// resource), password hashing and the secrets handed out in invitation,
// reset, session and API-token form. It is pure: the cluster package
// stores users and roles, the cluster service authenticates callers and
// asks here.
//
// Contract: Allowed is deny-first and default-deny; secrets are compared
// in constant time and stored only as hashes (API tokens excepted, which
// admins are shown, as Gravity did).
package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/opengravity/gravity/internal/resources"
)

// Admin is the built-in role with every permission.
const Admin = "@teleadmin"

// DefaultSessionTTL is a session's length when its roles set none.
const DefaultSessionTTL = 12 * time.Hour

// Builtin is the built-in roles, by name. @teleadmin is Gravity's: every
// verb on every resource, Kubernetes' admin group (bound to cluster-admin)
// and root on every node.
func Builtin() map[string]resources.RoleSpec {
	return map[string]resources.RoleSpec{
		Admin: {
			Allow: resources.Conditions{
				Logins:           []string{"root"},
				NodeLabels:       map[string]string{"*": "*"},
				KubernetesGroups: []string{"admin"},
				Rules:            []resources.Rule{{Resources: []string{"*"}, Verbs: []string{"*"}}},
			},
			Options: resources.RoleOptions{MaxSessionTTL: "30h"},
		},
	}
}

// IsBuiltin says whether name is a built-in role's.
func IsBuiltin(name string) bool {
	_, ok := Builtin()[name]
	return ok
}

// PermissionError is a refusal: it names the permission the caller lacks.
type PermissionError struct {
	User, Verb, Resource string
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("access denied: %s lacks permission %q on %q", e.User, e.Verb, e.Resource)
}

// Allowed says whether roles grant verb on resource: a matching deny rule
// wins over any allow; nothing matching is a refusal.
func Allowed(roles []resources.RoleSpec, resource, verb string) bool {
	allowed := false
	for _, r := range roles {
		if matches(r.Deny.Rules, resource, verb) {
			return false
		}
		allowed = allowed || matches(r.Allow.Rules, resource, verb)
	}
	return allowed
}

func matches(rules []resources.Rule, resource, verb string) bool {
	for _, rule := range rules {
		if (slices.Contains(rule.Resources, "*") || slices.Contains(rule.Resources, resource)) &&
			(slices.Contains(rule.Verbs, "*") || slices.Contains(rule.Verbs, verb)) {
			return true
		}
	}
	return false
}

// Check is Allowed as an error naming the permission.
func Check(user string, roles []resources.RoleSpec, resource, verb string) error {
	if Allowed(roles, resource, verb) {
		return nil
	}
	return &PermissionError{User: user, Verb: verb, Resource: resource}
}

// SessionTTL is the shortest max_session_ttl of roles (DefaultSessionTTL
// when none sets one).
func SessionTTL(roles []resources.RoleSpec) time.Duration {
	ttl := time.Duration(0)
	for _, r := range roles {
		if d, err := time.ParseDuration(r.Options.MaxSessionTTL); err == nil && d > 0 && (ttl == 0 || d < ttl) {
			ttl = d
		}
	}
	if ttl == 0 {
		return DefaultSessionTTL
	}
	return ttl
}

// KubernetesGroups are the groups roles put their users in.
func KubernetesGroups(roles []resources.RoleSpec) []string {
	var out []string
	for _, r := range roles {
		for _, g := range r.Allow.KubernetesGroups {
			if !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	return out
}

// bcryptCost makes one check take about a quarter of a second on these
// machines: slow for guessing, fast enough for a login.
const bcryptCost = 12

// HashPassword hashes password for storage. bcrypt reads 72 bytes at
// most, so a longer password would be cut silently: the SHA-256 of the
// password goes in instead, base64 (44 bytes) so that no NUL cuts it.
func HashPassword(password string) (string, error) {
	if err := resources.ValidPassword(password); err != nil {
		return "", err
	}
	h, err := bcrypt.GenerateFromPassword(prehash(password), bcryptCost)
	if err != nil {
		return "", fmt.Errorf("hashing the password: %w", err)
	}
	return string(h), nil
}

// CheckPassword says whether password is the one hash was made from.
func CheckPassword(hash, password string) bool {
	return hash != "" && bcrypt.CompareHashAndPassword([]byte(hash), prehash(password)) == nil
}

// DummyCheck spends the time of a password check, for unknown users, so
// that timing does not tell which users exist.
func DummyCheck(password string) {
	_ = bcrypt.CompareHashAndPassword(dummyHash(), prehash(password))
}

// dummyHash is made on first use: a quarter second every gravity command
// would pay otherwise.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("no user has this password hash"), bcryptCost)
	return h
})

func prehash(password string) []byte {
	sum := sha256.Sum256([]byte(password))
	return []byte(base64.StdEncoding.EncodeToString(sum[:]))
}

// NewSecret is 256 random bits as 64 hex digits: an invitation, a reset
// or a session.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// SecretHash is how a secret is stored and looked up.
func SecretHash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Equal compares two secrets in constant time.
func Equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// Lockout: after MaxFailures failed logins in a row a user is locked for
// LockDuration.
const (
	MaxFailures  = 5
	LockDuration = 15 * time.Minute
)

// MaxInviteTTL bounds an invitation (Gravity's), MaxResetTTL a reset.
const (
	DefaultInviteTTL = 8 * time.Hour
	MaxInviteTTL     = 48 * time.Hour
	MaxResetTTL      = 24 * time.Hour
)

// Logins are the OS logins roles let their users take on nodes: allowed
// by one, denied by none.
func Logins(roles []resources.RoleSpec) []string {
	var out []string
	for _, r := range roles {
		for _, l := range r.Allow.Logins {
			if !slices.Contains(out, l) && !denied(roles, func(d resources.Conditions) bool { return slices.Contains(d.Logins, l) }) {
				out = append(out, l)
			}
		}
	}
	return out
}

func denied(roles []resources.RoleSpec, match func(resources.Conditions) bool) bool {
	for _, r := range roles {
		if match(r.Deny) {
			return true
		}
	}
	return false
}

// NodeAllowed says whether roles let their users reach a node with
// labels: a role's node_labels must all match ("*": "*" matches any node).
func NodeAllowed(roles []resources.RoleSpec, labels map[string]string) bool {
	if denied(roles, func(d resources.Conditions) bool { return len(d.NodeLabels) > 0 && labelsMatch(d.NodeLabels, labels) }) {
		return false
	}
	for _, r := range roles {
		if len(r.Allow.NodeLabels) > 0 && labelsMatch(r.Allow.NodeLabels, labels) {
			return true
		}
	}
	return false
}

func labelsMatch(want, have map[string]string) bool {
	for k, v := range want {
		if k == "*" && v == "*" {
			continue
		}
		if hv, ok := have[k]; !ok || (v != "*" && hv != v) {
			return false
		}
	}
	return true
}
