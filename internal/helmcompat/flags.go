package helmcompat

import "strings"

// valueFlags are the long flags, Helm 3's and Helm 2's, that take a value.
// Positional detection depends on it: in `--set a=b CHART` the chart is the
// second token, not the first. No flag takes a value in one subcommand and
// none in another, so one table serves every subcommand.
var valueFlags = setOf(
	// Values and chart lookup (install, upgrade, template).
	"set", "set-string", "set-file", "set-json", "set-literal", "values",
	"version", "repo", "username", "password", "ca-file", "cert-file",
	"key-file", "keyring", "post-renderer", "post-renderer-args",
	"name", "name-template", "description", "labels", "history-max",
	"kube-version", "api-versions", "output-dir", "show-only", "release-name",
	// Global connection flags.
	"namespace", "kubeconfig", "kube-context", "kube-apiserver", "kube-as-user",
	"kube-as-group", "kube-ca-file", "kube-tls-server-name", "kube-token",
	"burst-limit", "qps", "registry-config", "repository-cache", "repository-config",
	// Everything else.
	"timeout", "output", "max", "offset", "revision", "template", "filter",
	"cascade", "selector", "time-format",
	// Helm 2 only; dropped, but their values must be skipped.
	"tiller-namespace", "tiller-connection-timeout", "home", "host",
	"tls-ca-cert", "tls-cert", "tls-key", "tls-hostname", "col-width",
)

// shortFlags maps the one-letter flags to their long names. -n is
// --namespace in Helm 3 but was --name for Helm 2's install: see install.
// -f is --values or list's --filter and -l --labels or list's --selector:
// all take a value, which is what matters here.
var shortFlags = map[byte]string{
	'n': "namespace", 'f': "values", 'o': "output", 'l': "labels", 'm': "max",
	'a': "all", 'A': "all-namespaces", 'i': "install", 'g': "generate-name",
	'h': "help", 'q': "short", 'r': "reverse", 'd': "date",
}

// helm2Only are Helm 2 flags that mean nothing without Tiller: dropped
// everywhere, since Helm 3 refuses unknown flags.
var helm2Only = setOf(
	"tiller-namespace", "tiller-connection-timeout", "home", "host",
	"tls", "tls-verify", "tls-ca-cert", "tls-cert", "tls-key", "tls-hostname",
)

// connFlags are the flags that say which cluster to talk to; the release
// lookup must talk to the same one.
var connFlags = setOf(
	"kubeconfig", "kube-context", "kube-apiserver", "kube-as-user", "kube-as-group",
	"kube-ca-file", "kube-tls-server-name", "kube-token", "kube-insecure-skip-tls-verify",
	"burst-limit", "qps",
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// item is one command-line argument: a flag (with its value) or a
// positional. toks are the tokens as given, re-emitted unless the flag is
// rewritten, so that what needs no translation reaches helm3 untouched.
type item struct {
	flag     string // long name without dashes; "" for a positional
	value    string
	hasValue bool
	toks     []string
}

func (it item) isFlag() bool { return it.flag != "" }

// parse splits args into items the way pflag does: --name=value,
// --name value (for value flags), -xVALUE, -x VALUE, clusters of short
// booleans (-aq), and -- ending the flags. A value flag at the very end
// has no value; helm3 will say so.
func parse(args []string) []item {
	var items []item
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			for _, p := range args[i+1:] {
				items = append(items, item{value: p, toks: []string{p}})
			}
			return items
		case strings.HasPrefix(a, "--"):
			it, used := parseLong(a, args[i+1:])
			items = append(items, it)
			i += used
		case strings.HasPrefix(a, "-") && len(a) > 1:
			its, used := parseShort(a, args[i+1:])
			items = append(items, its...)
			i += used
		default:
			items = append(items, item{value: a, toks: []string{a}})
		}
	}
	return items
}

// parseLong parses --name[=value]; used is how many of rest it took.
func parseLong(a string, rest []string) (it item, used int) {
	name, value, eq := strings.Cut(a[2:], "=")
	it = item{flag: name, value: value, hasValue: eq, toks: []string{a}}
	if !eq && valueFlags[name] && len(rest) > 0 {
		it.value, it.hasValue, it.toks = rest[0], true, []string{a, rest[0]}
		return it, 1
	}
	return it, 0
}

// parseShort parses -x, -xVALUE, -x=VALUE, -x VALUE and -abc. Letters this
// table does not know are kept as booleans named by the letter.
func parseShort(a string, rest []string) (its []item, used int) {
	letters := a[1:]
	for j := 0; j < len(letters); j++ {
		c := letters[j]
		name, ok := shortFlags[c]
		if !ok {
			name = string(c)
		}
		tok := "-" + string(c)
		if !valueFlags[name] {
			its = append(its, item{flag: name, toks: []string{tok}})
			continue
		}
		inline := strings.TrimPrefix(letters[j+1:], "=")
		switch {
		case j+1 < len(letters):
			its = append(its, item{flag: name, value: inline, hasValue: true, toks: []string{tok + "=" + inline}})
		case len(rest) > 0:
			its = append(its, item{flag: name, value: rest[0], hasValue: true, toks: []string{tok, rest[0]}})
			used = 1
		default:
			its = append(its, item{flag: name, toks: []string{tok}})
		}
		return its, used
	}
	if len(its) == 1 {
		its[0].toks = []string{a} // as given: -a, not rewritten
	}
	return its, used
}
