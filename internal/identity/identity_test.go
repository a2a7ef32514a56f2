package identity

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opengravity/gravity/internal/resources"
)

func TestAllowed(t *testing.T) {
	viewer := resources.RoleSpec{Allow: resources.Conditions{Rules: []resources.Rule{{Resources: []string{"user", "token"}, Verbs: []string{"list", "read"}}}}}
	noTokens := resources.RoleSpec{Deny: resources.Conditions{Rules: []resources.Rule{{Resources: []string{"token"}, Verbs: []string{"*"}}}}}
	admin := Builtin()[Admin]
	for _, tc := range []struct {
		name           string
		roles          []resources.RoleSpec
		resource, verb string
		want           bool
	}{
		{"admin any", []resources.RoleSpec{admin}, "tlskeypair", "delete", true},
		{"viewer lists users", []resources.RoleSpec{viewer}, "user", "list", true},
		{"viewer cannot create users", []resources.RoleSpec{viewer}, "user", "create", false},
		{"viewer cannot read roles", []resources.RoleSpec{viewer}, "role", "read", false},
		{"no roles", nil, "user", "list", false},
		{"deny wins", []resources.RoleSpec{admin, noTokens}, "token", "list", false},
		{"deny leaves the rest", []resources.RoleSpec{admin, noTokens}, "user", "delete", true},
	} {
		if got := Allowed(tc.roles, tc.resource, tc.verb); got != tc.want {
			t.Errorf("%s: Allowed(%s, %s) = %v", tc.name, tc.verb, tc.resource, got)
		}
	}
	err := Check("bob", nil, "user", "create")
	if err == nil || !strings.Contains(err.Error(), `bob lacks permission "create" on "user"`) {
		t.Errorf("Check = %v", err)
	}
}

func TestSessionTTL(t *testing.T) {
	short := resources.RoleSpec{Options: resources.RoleOptions{MaxSessionTTL: "2h"}}
	if got := SessionTTL([]resources.RoleSpec{Builtin()[Admin], short}); got != 2*time.Hour {
		t.Errorf("SessionTTL = %v", got)
	}
	if got := SessionTTL(nil); got != DefaultSessionTTL {
		t.Errorf("SessionTTL(nil) = %v", got)
	}
}

func TestPassword(t *testing.T) {
	long := strings.Repeat("x", 100) // past bcrypt's 72 bytes
	h, err := HashPassword(long)
	if err != nil {
		t.Fatal(err)
	}
	if !CheckPassword(h, long) || CheckPassword(h, long[:99]+"y") || CheckPassword(h, long[:72]) {
		t.Error("password check does not see the whole password")
	}
	if _, err := HashPassword("short"); err == nil {
		t.Error("a short password was hashed")
	}
	if CheckPassword("", "") {
		t.Error("an empty hash matched")
	}
}

func TestSecret(t *testing.T) {
	a, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSecret()
	if len(a) != 64 || a == b || len(SecretHash(a)) != 64 || SecretHash(a) == a {
		t.Errorf("secrets %q %q", a, b)
	}
	if !Equal(a, a) || Equal(a, b) {
		t.Error("Equal")
	}
}

func BenchmarkCheckPassword(b *testing.B) {
	h, _ := HashPassword("correct horse battery staple")
	for b.Loop() {
		CheckPassword(h, "correct horse battery staple")
	}
}

func TestLoginsAndNodes(t *testing.T) {
	ops := resources.RoleSpec{Allow: resources.Conditions{Logins: []string{"root", "ops"}, NodeLabels: map[string]string{"role": "node"}}}
	noRoot := resources.RoleSpec{Deny: resources.Conditions{Logins: []string{"root"}, NodeLabels: map[string]string{"role": "db"}}}
	for _, tc := range []struct {
		name   string
		roles  []resources.RoleSpec
		labels map[string]string
		logins []string
		node   bool
	}{
		{"admin anywhere", []resources.RoleSpec{Builtin()[Admin]}, map[string]string{"role": "db"}, []string{"root"}, true},
		{"label match", []resources.RoleSpec{ops}, map[string]string{"role": "node", "hostname": "a"}, []string{"root", "ops"}, true},
		{"label mismatch", []resources.RoleSpec{ops}, map[string]string{"role": "db"}, []string{"root", "ops"}, false},
		{"deny wins", []resources.RoleSpec{Builtin()[Admin], noRoot}, map[string]string{"role": "db"}, nil, false},
		{"deny other label", []resources.RoleSpec{ops, noRoot}, map[string]string{"role": "node"}, []string{"ops"}, true},
		{"no roles", nil, map[string]string{"role": "node"}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Logins(tc.roles); !slices.Equal(got, tc.logins) {
				t.Errorf("Logins = %v, want %v", got, tc.logins)
			}
			if got := NodeAllowed(tc.roles, tc.labels); got != tc.node {
				t.Errorf("NodeAllowed = %v, want %v", got, tc.node)
			}
		})
	}
}
