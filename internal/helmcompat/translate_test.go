package helmcompat

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// cluster is the releases every test's lookup returns.
var cluster = []Release{
	{Name: "example", Namespace: "default", Status: "deployed"},
	{Name: "web", Namespace: "prod", Status: "deployed"},
	{Name: "db", Namespace: "prod", Status: "deployed"},
	{Name: "old", Namespace: "default", Status: "uninstalled"},
	{Name: "broken", Namespace: "kube-system", Status: "failed"},
	{Name: "dup", Namespace: "a", Status: "deployed"},
	{Name: "dup", Namespace: "b", Status: "deployed"},
}

const chart = "/var/lib/gravity/resources/charts/alpine"

func TestTranslate(t *testing.T) {
	tests := []struct {
		name  string
		args  string
		calls []string // helm3 command lines, space-separated
		err   string   // a substring of the error, if one is expected
		note  string   // a substring of one note, if one is expected
	}{
		// The walkthrough's hooks, as written for Helm 2.
		{name: "install hook", args: "install " + chart + " --set registry=registry.local:5000/ --name example2",
			calls: []string{"install example2 " + chart + " --set registry=registry.local:5000/"}},
		{name: "upgrade hook", args: "upgrade --set registry=registry.local:5000/ example " + chart,
			calls: []string{"upgrade example " + chart + " --set registry=registry.local:5000/ --namespace default"}},

		// install
		{name: "install -n is the name", args: "install -n x " + chart + " --namespace ns",
			calls: []string{"install x " + chart + " --namespace ns --create-namespace"}},
		{name: "install --name=", args: "install --name=x -f v.yaml " + chart,
			calls: []string{"install x " + chart + " -f v.yaml"}},
		{name: "install short inline", args: "install -nx -fv.yaml " + chart,
			calls: []string{"install x " + chart + " -f=v.yaml"}},
		{name: "install flags first", args: "install --namespace=ns --set a=b --values v.yaml --version 1.0 " + chart + " --name x",
			calls: []string{"install x " + chart + " --namespace=ns --set a=b --values v.yaml --version 1.0 --create-namespace"}},
		{name: "install unnamed", args: "install " + chart,
			calls: []string{"install " + chart + " --generate-name"}},
		{name: "install name template", args: "install " + chart + " --name-template t-{{randAlpha}}",
			calls: []string{"install " + chart + " --name-template t-{{randAlpha}}"}},
		{name: "install Helm 3 order", args: "install x " + chart,
			calls: []string{"install x " + chart}},
		{name: "install name twice", args: "install x " + chart + " --name y", err: "given twice"},
		{name: "install taken", args: "install " + chart + " --name web",
			err: `a release named "web" already exists (namespace prod, status deployed)`},
		{name: "install taken elsewhere", args: "install " + chart + " --name web --namespace other",
			err: `a release named "web" already exists`},
		{name: "install taken, uninstalled", args: "install " + chart + " --name old",
			err: `a release named "old" already exists (namespace default, status uninstalled)`},
		{name: "install replace", args: "install " + chart + " --name broken --replace",
			calls: []string{"install broken " + chart + " --replace --namespace kube-system"}},
		{name: "install replace deployed", args: "install " + chart + " --name web --replace", err: "already exists"},
		{name: "install replace elsewhere", args: "install " + chart + " --name old --replace --namespace x", err: "already exists"},
		{name: "install helm 2 flags", args: "install " + chart + " --name x --tiller-namespace kube-system --tls --tls-cert c.pem --home /h --timeout 600 --dep-up",
			calls: []string{"install x " + chart + " --timeout=600s --dependency-update"}, note: "--tiller-namespace"},
		{name: "install dry-run is boolean", args: "install --dry-run " + chart + " --name x",
			calls: []string{"install x " + chart + " --dry-run"}},
		{name: "install after --", args: "install --name x -- -chart",
			calls: []string{"install -- x -chart"}},

		// list
		{name: "ls", args: "ls", calls: []string{"list --all-namespaces --output json"}},
		{name: "list -q", args: "list -q --all", calls: []string{"list -q --all --all-namespaces"}},
		{name: "list namespace", args: "list --namespace x", calls: []string{"list --namespace x --output json"}},
		{name: "list -n", args: "ls -n x", calls: []string{"list -n x --output json"}},
		{name: "list -A", args: "ls -A", calls: []string{"list -A --output json"}},
		{name: "list filter", args: "ls ^ex --deleted", calls: []string{"list --uninstalled --all-namespaces --filter ^ex --output json"}},
		{name: "list -f", args: "ls -f ^ex", calls: []string{"list -f ^ex --all-namespaces --output json"}},
		{name: "list global", args: "--kube-context c --tiller-namespace t ls", calls: []string{"list --kube-context c --all-namespaces --output json"}},
		{name: "list yaml", args: "ls -o yaml", calls: []string{"list -o yaml --all-namespaces"}},

		// one release, found in its namespace
		{name: "upgrade not found", args: "upgrade nope " + chart, calls: []string{"upgrade nope " + chart}},
		{name: "upgrade -i not found", args: "upgrade -i nope " + chart, calls: []string{"upgrade nope " + chart + " -i"}},
		{name: "upgrade -i found", args: "upgrade --install web " + chart, calls: []string{"upgrade web " + chart + " --install --namespace prod"}},
		{name: "upgrade given namespace", args: "upgrade web " + chart + " -n x", calls: []string{"upgrade web " + chart + " -n x"}},
		{name: "upgrade -i elsewhere", args: "upgrade -i web " + chart + " -n x", err: `"web" already exists (namespace prod`},
		{name: "upgrade -i here", args: "upgrade -i web " + chart + " -n prod", calls: []string{"upgrade web " + chart + " -i -n prod --create-namespace"}},
		{name: "upgrade ambiguous", args: "upgrade dup " + chart, err: "namespaces a, b"},
		{name: "upgrade recreate-pods", args: "upgrade web " + chart + " --recreate-pods --wait",
			calls: []string{"upgrade web " + chart + " --wait --namespace prod"}, note: "recreate"},
		{name: "rollback", args: "rollback web 2", calls: []string{"rollback web 2 --namespace prod"}},
		{name: "rollback timeout", args: "rollback --timeout 30 web 2", calls: []string{"rollback web 2 --timeout=30s --namespace prod"}},
		{name: "hist", args: "hist web --max 3", calls: []string{"history web --max 3 --namespace prod"}},
		{name: "status", args: "status web -o json", calls: []string{"status web -o json --namespace prod"}},
		{name: "status given", args: "status --namespace=prod web", calls: []string{"status web --namespace=prod"}},
		{name: "test", args: "test web --cleanup", calls: []string{"test web --namespace prod"}, note: "cleanup"},
		{name: "get bare", args: "get web", calls: []string{"get all web --namespace prod"}},
		{name: "get values", args: "get values web --all", calls: []string{"get values web --all --namespace prod"}},
		{name: "get manifest revision", args: "get manifest --revision 2 example", calls: []string{"get manifest example --revision 2 --namespace default"}},

		// delete
		{name: "delete", args: "delete web", calls: []string{"uninstall web --keep-history --namespace prod"}},
		{name: "delete --purge", args: "del --purge web", calls: []string{"uninstall web --namespace prod"}},
		{name: "delete several", args: "delete web example db nope --purge", calls: []string{
			"uninstall web db --namespace prod", "uninstall example --namespace default", "uninstall nope"}},
		{name: "delete namespace given", args: "delete web db -n prod --purge", calls: []string{"uninstall web db -n prod"}},
		{name: "uninstall keep-history", args: "uninstall web --keep-history", calls: []string{"uninstall web --keep-history --namespace prod"}},

		// Tiller's own commands, and the rest
		{name: "init", args: "init --upgrade", calls: nil, note: "no Tiller"},
		{name: "reset", args: "reset", calls: nil, note: "no Tiller"},
		{name: "version", args: "version", calls: []string{"version"}},
		{name: "no args", args: "", calls: []string{""}},
		{name: "help", args: "install -h", calls: []string{"install -h"}},
		{name: "help anywhere", args: "delete web --help", calls: []string{"delete web --help"}},
		{name: "template", args: "template x ./c --set a=b", calls: []string{"template x ./c --set a=b"}},
		{name: "template tiller", args: "template ./c --tiller-namespace=x", calls: []string{"template ./c"}, note: "Tiller"},
		{name: "repo", args: "repo add stable https://x", calls: []string{"repo add stable https://x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := Translate(strings.Fields(tc.args), fakeLookup(cluster))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q (plan %q)", err, tc.err, plan.Calls)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range plan.Calls {
				got = append(got, strings.Join(c, " "))
			}
			if !slices.Equal(got, tc.calls) {
				t.Errorf("calls\n%q, want\n%q", got, tc.calls)
			}
			if tc.note != "" && !slices.ContainsFunc(plan.Notes, func(n string) bool { return strings.Contains(n, tc.note) }) {
				t.Errorf("notes %q lack %q", plan.Notes, tc.note)
			}
		})
	}
}

func fakeLookup(rs []Release) Lookup {
	return func([]string) ([]Release, error) { return rs, nil }
}

// TestLookup: the releases are listed once at most, only when needed, on
// the cluster the user named, and a failed list stops everything.
func TestLookup(t *testing.T) {
	var calls [][]string
	counting := func(conn []string) ([]Release, error) {
		calls = append(calls, conn)
		return cluster, nil
	}
	for _, args := range []string{"install ./c", "ls", "version", "delete web -n prod", "status web --namespace prod"} {
		if _, err := Translate(strings.Fields(args), counting); err != nil || len(calls) != 0 {
			t.Fatalf("%s: %v, listed %d times: want no lookup", args, err, len(calls))
		}
	}
	if _, err := Translate(strings.Fields("delete --kube-context c web db example --kubeconfig=k"), counting); err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"--kube-context", "c", "--kubeconfig=k"}}; !slices.EqualFunc(calls, want, slices.Equal) {
		t.Errorf("lookups %q, want %q", calls, want)
	}
	failing := func([]string) ([]Release, error) { return nil, errors.New("connection refused") }
	_, err := Translate(strings.Fields("install ./c --name x"), failing)
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("error %v: want the lookup's, with the release", err)
	}
}

func TestParseReleases(t *testing.T) {
	out := `[{"name":"example","namespace":"default","revision":"1","updated":"2026-11-25 22:00:00","status":"deployed","chart":"alpine-0.1.0","app_version":"3.3"}]`
	rs, err := ParseReleases([]byte(out))
	if err != nil || len(rs) != 1 || rs[0] != (Release{Name: "example", Namespace: "default", Status: "deployed"}) {
		t.Errorf("%+v, %v", rs, err)
	}
	if _, err := ParseReleases([]byte("Error: x")); err == nil {
		t.Error("no error for garbage")
	}
	if got := strings.Join(ListArgs([]string{"--kube-context", "c"}), " "); got != "list --all-namespaces --all --max 0 --output json --kube-context c" {
		t.Errorf("ListArgs: %s", got)
	}
}

// FuzzTranslate: no command line makes Translate panic, and every plan's
// calls are non-empty command lines unless it is a Tiller no-op.
func FuzzTranslate(f *testing.F) {
	for _, s := range []string{
		"install " + chart + " --set registry=registry.local:5000/ --name example",
		"upgrade --set registry=registry.local:5000/ example " + chart,
		"delete web db --purge", "ls -an", "get", "install -n", "-n x install", "-- ls", "get values -- -x",
		"upgrade -i --namespace=x web c --timeout 10", "install -fvalues.yaml -nname c --replace",
	} {
		f.Add(strings.ReplaceAll(s, " ", "\x00"))
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, "\x00")
		plan, err := Translate(args, fakeLookup(cluster))
		if err != nil {
			return
		}
		for _, c := range plan.Calls {
			if c == nil {
				t.Fatalf("%q: nil call", args)
			}
		}
	})
}
