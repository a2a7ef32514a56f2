package resources

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// FieldError is a resource's problem at a field path.
type FieldError struct {
	Field string
	Msg   string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// Password lengths: long enough to resist guessing, with no rules about
// what it is made of.
const (
	MinPasswordLength = 12
	MaxPasswordLength = 128
)

var (
	userName  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$`)
	tokenName = regexp.MustCompile(`^[A-Za-z0-9._-]{6,128}$`)
	roleName  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
)

// Verbs a rule grants.
var Verbs = []string{"list", "read", "create", "update", "delete"}

// RuleResources are what a rule's resources name ("*": all of them).
var RuleResources = []string{"user", "token", "role", "authgateway", "authpreference", "tlskeypair",
	"auth_connector", "cluster", "operation", "event", "node", "session"}

// ValidUserName says why name cannot name a user, or nil.
func ValidUserName(name string) error {
	if !userName.MatchString(name) {
		return fmt.Errorf("%q is not a valid user name (letters, digits and . _ @ + -, at most 128)", name)
	}
	return nil
}

// ValidPassword says why password is refused, or nil.
func ValidPassword(password string) error {
	switch n := len([]rune(password)); {
	case n < MinPasswordLength:
		return fmt.Errorf("the password is %d characters; it needs at least %d", n, MinPasswordLength)
	case n > MaxPasswordLength:
		return fmt.Errorf("the password is %d characters; at most %d are accepted", n, MaxPasswordLength)
	}
	return nil
}

// Validate checks what a resource says on its own (what depends on the
// cluster, such as whether a role exists, is the cluster service's).
func Validate(r Resource) []FieldError {
	var errs []FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{field, fmt.Sprintf(format, args...)})
	}
	if r.Metadata.Name == "" && r.Kind != KindAuthGateway && r.Kind != KindAuthPreference {
		add("metadata.name", "missing")
	}
	switch s := r.Spec.(type) {
	case *UserSpec:
		if r.Metadata.Name != "" {
			if err := ValidUserName(r.Metadata.Name); err != nil {
				add("metadata.name", "%v", err)
			}
		}
		if s.Type == "" {
			s.Type = UserRegular
		}
		if !slices.Contains([]string{UserRegular, UserAdmin, UserAgent}, s.Type) {
			add("spec.type", "%q is not a user type (regular, admin or agent)", s.Type)
		}
		if len(s.Roles) == 0 {
			add("spec.roles", "missing: a user needs at least one role")
		}
		for i, role := range s.Roles {
			if !roleName.MatchString(strings.TrimPrefix(role, "@")) {
				add(fmt.Sprintf("spec.roles[%d]", i), "%q is not a role name", role)
			}
		}
		if s.Password != "" {
			if s.Type == UserAgent {
				add("spec.password", "an agent user has no password: it uses API tokens")
			} else if err := ValidPassword(s.Password); err != nil {
				add("spec.password", "%v", err)
			}
		}
	case *TokenSpec:
		if r.Metadata.Name != "" && !tokenName.MatchString(r.Metadata.Name) {
			add("metadata.name", "a token is 6 to 128 letters, digits, '.', '_' or '-'")
		}
		if s.User == "" {
			add("spec.user", "missing: the user the token authenticates")
		} else if err := ValidUserName(s.User); err != nil {
			add("spec.user", "%v", err)
		}
	case *RoleSpec:
		switch {
		case strings.HasPrefix(r.Metadata.Name, "@"):
			add("metadata.name", "names starting with @ are the built-in roles'")
		case r.Metadata.Name != "" && !roleName.MatchString(r.Metadata.Name):
			add("metadata.name", "%q is not a role name (letters, digits, '.', '_', '-')", r.Metadata.Name)
		}
		errs = append(errs, validRules("spec.allow", s.Allow)...)
		errs = append(errs, validRules("spec.deny", s.Deny)...)
		if s.Options.MaxSessionTTL != "" {
			if d, err := time.ParseDuration(s.Options.MaxSessionTTL); err != nil || d <= 0 || d > 30*24*time.Hour {
				add("spec.options.max_session_ttl", "%q is not a duration between 1s and 720h", s.Options.MaxSessionTTL)
			}
		}
	case *AuthGatewaySpec:
		for field, addrs := range map[string][]string{"public_addr": s.PublicAddr, "web_public_addr": s.WebPublicAddr,
			"ssh_public_addr": s.SSHPublicAddr, "kubernetes_public_addr": s.KubernetesPublicAddr} {
			for i, a := range addrs {
				if err := validAddr(a); err != nil {
					add(fmt.Sprintf("spec.%s[%d]", field, i), "%v", err)
				}
			}
		}
		if s.Authentication != nil {
			errs = append(errs, validAuth("spec.authentication", *s.Authentication)...)
		}
	case *AuthPreferenceSpec:
		errs = append(errs, validAuth("spec", *s)...)
	case *TLSKeyPairSpec:
		switch {
		case s.Cert == "":
			add("spec.cert", "missing")
		case s.PrivateKey == "":
			add("spec.private_key", "missing")
		default:
			if _, err := tls.X509KeyPair([]byte(s.Cert), []byte(s.PrivateKey)); err != nil {
				add("spec.cert", "the certificate and the private key do not make a key pair: %v", err)
			}
		}
	case *OIDCSpec:
		if u, err := url.Parse(s.IssuerURL); err != nil || u.Scheme != "https" || u.Host == "" {
			add("spec.issuer_url", "%q is not an https URL", s.IssuerURL)
		}
		if s.ClientID == "" {
			add("spec.client_id", "missing")
		}
		if u, err := url.Parse(s.RedirectURL); err != nil || u.Scheme != "https" || u.Host == "" {
			add("spec.redirect_url", "%q is not an https URL", s.RedirectURL)
		}
		if len(s.ClaimsToRoles) == 0 {
			add("spec.claims_to_roles", "missing: which claims give which roles")
		}
		for i, m := range s.ClaimsToRoles {
			if m.Claim == "" || len(m.Roles) == 0 {
				add(fmt.Sprintf("spec.claims_to_roles[%d]", i), "a mapping needs a claim and roles")
			}
		}
	case *GithubSpec:
		if s.ClientID == "" {
			add("spec.client_id", "missing")
		}
		if s.ClientSecret == "" {
			add("spec.client_secret", "missing")
		}
		if u, err := url.Parse(s.RedirectURL); err != nil || u.Scheme != "https" || u.Host == "" {
			add("spec.redirect_url", "%q is not an https URL", s.RedirectURL)
		}
		if len(s.TeamsToLogins) == 0 {
			add("spec.teams_to_logins", "missing: which teams get which logins")
		}
		for i, m := range s.TeamsToLogins {
			if m.Organization == "" || m.Team == "" || len(m.Logins) == 0 {
				add(fmt.Sprintf("spec.teams_to_logins[%d]", i), "a mapping needs an organization, a team and logins")
			}
		}
	}
	return errs
}

func validRules(path string, c Conditions) []FieldError {
	var errs []FieldError
	for i, rule := range c.Rules {
		at := fmt.Sprintf("%s.rules[%d]", path, i)
		if len(rule.Resources) == 0 {
			errs = append(errs, FieldError{at + ".resources", "missing"})
		}
		for _, res := range rule.Resources {
			if res != "*" && !slices.Contains(RuleResources, res) {
				errs = append(errs, FieldError{at + ".resources", fmt.Sprintf("%q is not a resource (one of %s or *)", res, strings.Join(RuleResources, ", "))})
			}
		}
		if len(rule.Verbs) == 0 {
			errs = append(errs, FieldError{at + ".verbs", "missing"})
		}
		for _, v := range rule.Verbs {
			if v != "*" && !slices.Contains(Verbs, v) {
				errs = append(errs, FieldError{at + ".verbs", fmt.Sprintf("%q is not a verb (one of %s or *)", v, strings.Join(Verbs, ", "))})
			}
		}
	}
	return errs
}

func validAuth(path string, a AuthPreferenceSpec) []FieldError {
	var errs []FieldError
	if a.Type != "" && !slices.Contains([]string{"local", "oidc", "github"}, a.Type) {
		errs = append(errs, FieldError{path + ".type", fmt.Sprintf("%q is not an authentication type (local, oidc or github)", a.Type)})
	}
	if a.SecondFactor != "" && a.SecondFactor != SecondFactorOff && a.SecondFactor != SecondFactorOTP {
		errs = append(errs, FieldError{path + ".second_factor", fmt.Sprintf("%q is not a second factor (off or otp)", a.SecondFactor)})
	}
	return errs
}

// validAddr accepts host or host:port.
func validAddr(a string) error {
	host := a
	if h, port, err := net.SplitHostPort(a); err == nil {
		host = h
		if _, err := net.LookupPort("tcp", port); err != nil {
			return fmt.Errorf("%q: bad port", a)
		}
	}
	if host == "" || strings.ContainsAny(host, "/ ") {
		return fmt.Errorf("%q is not a host or host:port", a)
	}
	return nil
}
