package resources

import (
	"os"
	"strings"
	"testing"
)

func TestDecodeSeedAgent(t *testing.T) {
	data, err := os.ReadFile("../../examples/gravity101/agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Decode("agent.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("got %d resources, want 2", len(rs))
	}
	u, ok := rs[0].Spec.(*UserSpec)
	if rs[0].Kind != KindUser || !ok || rs[0].Metadata.Name != "agent@example.com" || u.Type != UserAgent || len(u.Roles) != 1 || u.Roles[0] != "@teleadmin" {
		t.Errorf("user = %+v %+v", rs[0], rs[0].Spec)
	}
	tok, ok := rs[1].Spec.(*TokenSpec)
	if rs[1].Kind != KindToken || !ok || rs[1].Metadata.Name != "qwe123" || tok.User != "agent@example.com" {
		t.Errorf("token = %+v %+v", rs[1], rs[1].Spec)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string // substrings of the error, in it all
	}{
		{"unknown kind", "kind: gizmo\nversion: v1\nmetadata: {name: a}\n", []string{"f.yaml:1: kind: unknown kind \"gizmo\""}},
		{"missing kind", "version: v2\nmetadata: {name: a}\n", []string{"f.yaml:1: kind: missing"}},
		{"unknown top field", "kind: user\nversion: v2\nmetadata: {name: a}\nspec: {roles: [x]}\nstatus: {}\n", []string{"f.yaml:5: status: unknown field"}},
		{"unknown spec field", "kind: user\nversion: v2\nmetadata:\n  name: bob\nspec:\n  roles: [x]\n  rolez: [y]\n", []string{"f.yaml:7: spec.rolez: unknown field (known: full_name, password, roles, type)"}},
		{"unknown nested field", "kind: role\nversion: v3\nmetadata: {name: r}\nspec:\n  allow:\n    rules:\n    - resources: [user]\n      verbs: [list]\n      wher: x\n", []string{"f.yaml:9: spec.allow.rules[0].wher: unknown field"}},
		{"missing field", "kind: token\nversion: v2\nmetadata:\n  name: qwe123\nspec:\n  user: \"\"\n", []string{"f.yaml:6: spec.user: missing"}},
		{"missing name", "kind: user\nversion: v2\nmetadata: {}\nspec: {roles: [a]}\n", []string{"f.yaml:3: metadata.name: missing"}},
		{"wrong version", "kind: user\nversion: v9\nmetadata: {name: a}\nspec: {roles: [a]}\n", []string{"f.yaml:2: version: \"v9\" is not a version of user (it is v2)"}},
		{"type error", "kind: user\nversion: v2\nmetadata: {name: a}\nspec:\n  roles: {a: b}\n", []string{"f.yaml:5: spec: cannot unmarshal"}},
		{"second document", "kind: token\nversion: v2\nmetadata: {name: qwe123}\nspec: {user: a}\n---\nkind: user\nversion: v2\nmetadata: {name: \"a b\"}\nspec: {roles: [r]}\n", []string{"f.yaml:8: metadata.name: \"a b\" is not a valid user name"}},
		{"short password", "kind: user\nversion: v2\nmetadata: {name: a}\nspec:\n  roles: [r]\n  password: short\n", []string{"f.yaml:6: spec.password: the password is 5 characters; it needs at least 12"}},
		{"agent password", "kind: user\nversion: v2\nmetadata: {name: a}\nspec:\n  type: agent\n  roles: [r]\n  password: long-enough-password\n", []string{"spec.password: an agent user has no password"}},
		{"bad verb", "kind: role\nversion: v3\nmetadata: {name: r}\nspec:\n  allow:\n    rules:\n    - resources: [user]\n      verbs: [smash]\n", []string{"f.yaml:8: spec.allow.rules[0].verbs: \"smash\" is not a verb"}},
		{"builtin role name", "kind: role\nversion: v3\nmetadata: {name: \"@mine\"}\nspec: {allow: {}}\n", []string{"metadata.name: names starting with @"}},
		{"bad second factor", "kind: authpreference\nversion: v2\nmetadata: {name: x}\nspec: {second_factor: u3f}\n", []string{"f.yaml:4: spec.second_factor: \"u3f\" is not a second factor"}},
		{"bad key pair", "kind: tlskeypair\nversion: v2\nmetadata: {name: x}\nspec: {cert: a, private_key: b}\n", []string{"spec.cert: the certificate and the private key do not make a key pair"}},
		{"oidc", "kind: oidc\nversion: v2\nmetadata: {name: x}\nspec: {issuer_url: 'http://a', client_id: c, redirect_url: 'https://r', claims_to_roles: []}\n", []string{"spec.issuer_url: \"http://a\" is not an https URL", "spec.claims_to_roles: missing"}},
		{"syntax", "kind: user\n  version: [\n", []string{"f.yaml:2:"}},
		{"empty", "", []string{"no resources in the file"}},
		{"not a mapping", "- a\n- b\n", []string{"f.yaml:1: a resource is a mapping"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := Decode("f.yaml", []byte(tc.doc))
			if err == nil {
				t.Fatalf("decoded %+v, want an error", rs)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestDecodeKinds(t *testing.T) {
	doc := `kind: roles
version: v3
metadata: {name: viewer}
spec:
  allow:
    kubernetes_groups: [view]
    logins: [ubuntu]
    rules: [{resources: [user, token], verbs: [list, read]}]
  options: {max_session_ttl: 8h}
---
kind: gw
version: v1
metadata: {name: authgateway}
spec: {public_addr: ["cluster.example.com:443"]}
---
---
kind: cap
version: v2
metadata: {name: auth}
spec: {second_factor: otp}
---
kind: github
version: v3
metadata: {name: gh}
spec:
  client_id: id
  client_secret: s
  redirect_url: https://cluster.example.com/v1/github/callback
  teams_to_logins: [{organization: o, team: t, logins: [root]}]
`
	rs, err := Decode("f.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, r := range rs {
		kinds = append(kinds, r.Kind)
	}
	if got := strings.Join(kinds, ","); got != "role,authgateway,authpreference,github" {
		t.Errorf("kinds = %s", got)
	}
	if s := rs[0].Spec.(*RoleSpec); s.Options.MaxSessionTTL != "8h" || s.Allow.Rules[0].Verbs[1] != "read" {
		t.Errorf("role = %+v", s)
	}
}

func TestCanonicalKind(t *testing.T) {
	for in, want := range map[string]string{"users": "user", "Tokens": "token", "gw": "authgateway", "tls": "tlskeypair", "cluster_auth_preference": "authpreference"} {
		if got, ok := CanonicalKind(in); !ok || got != want {
			t.Errorf("CanonicalKind(%q) = %q, %v", in, got, ok)
		}
	}
	if _, ok := CanonicalKind("gizmo"); ok {
		t.Error("gizmo is a kind")
	}
}

func FuzzDecode(f *testing.F) {
	seed, _ := os.ReadFile("../../examples/gravity101/agent.yaml")
	f.Add(seed)
	f.Add([]byte("kind: role\nversion: v3\nmetadata: {name: r}\nspec: {allow: {rules: [{resources: ['*'], verbs: ['*']}]}}\n"))
	f.Add([]byte("a: &a [*a, *a]\nb: &b [*a, *a]\n"))
	f.Add([]byte("kind: user\nversion: v2\nmetadata: &m {name: a}\nspec: {roles: [*m]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := Decode("f.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error without the file: %v", err)
			}
			return
		}
		for _, r := range rs {
			if fe := Validate(r); len(fe) > 0 {
				t.Fatalf("decoded an invalid resource: %v", fe)
			}
		}
	})
}
