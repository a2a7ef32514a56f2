package helmcompat

import (
	"fmt"
	"slices"
	"strings"
)

// renamed are Helm 2 flags Helm 3 knows under another name.
var renamed = map[string]string{
	"dep-up":   "dependency-update", // install, upgrade
	"deleted":  "uninstalled",       // list
	"deleting": "uninstalling",      // list
}

// dropped are Helm 2 flags of one subcommand that Helm 3's lacks, with
// why dropping them is harmless enough.
var dropped = map[string]map[string]string{
	"upgrade":  {"recreate-pods": "Helm 3's upgrade does not recreate pods"},
	"rollback": {"description": "Helm 3's rollback takes no description"},
	"test": {
		"cleanup":  "Helm 3 keeps test pods until the next test run",
		"parallel": "Helm 3 runs tests one by one",
		"max":      "Helm 3 runs tests one by one",
	},
	"list":    {"col-width": "Helm 3 does not truncate columns"},
	"history": {"col-width": "Helm 3 does not truncate columns"},
}

// getSubcommands are what may follow `get`; Helm 2's bare `get X` was all.
var getSubcommands = []string{"all", "values", "manifest", "hooks", "notes", "metadata"}

// flags returns the flags for helm3, global ones first: Helm 2's dropped,
// renamed or converted, the rest as given. skip are left for the caller.
func (t *translator) flags(canon string, skip ...string) []string {
	var out []string
	for _, it := range t.all() {
		switch why, drop := dropped[canon][it.flag]; {
		case !it.isFlag() || slices.Contains(skip, it.flag):
		case helm2Only[it.flag]:
			t.notes = append(t.notes, droppedNote(it))
		case drop:
			t.notes = append(t.notes, fmt.Sprintf("ignoring --%s: %s", it.flag, why))
		case renamed[it.flag] != "":
			out = append(out, "--"+renamed[it.flag]+valueSuffix(it))
		case it.flag == "timeout" && it.hasValue && isDigits(it.value):
			// Helm 2's timeouts were seconds; Helm 3's are durations.
			out = append(out, "--timeout="+it.value+"s")
		default:
			out = append(out, it.toks...)
		}
	}
	return out
}

func valueSuffix(it item) string {
	if it.hasValue {
		return "=" + it.value
	}
	return ""
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// call assembles a helm3 command line. Positionals go after `--` when one
// looks like a flag, as they may have come from after the user's `--`.
func call(words, pos, flags []string) []string {
	out := slices.Clone(words)
	if slices.ContainsFunc(pos, func(p string) bool { return strings.HasPrefix(p, "-") }) {
		out = append(append(out, flags...), "--")
		return append(out, pos...)
	}
	return append(append(out, pos...), flags...)
}

// install: Helm 2 took the release name as --name (-n) and created the
// namespace; release names were unique in the cluster, not per namespace.
func (t *translator) install() ([][]string, error) {
	t.helm2Name()
	all := t.all()
	pos := t.positionals()
	name, hasName := flagValue(all, "name")
	if len(pos) >= 2 { // Helm 3's order, install NAME CHART: welcome too
		if hasName {
			return nil, fmt.Errorf("release name given twice: --name %s and %s", name, pos[0])
		}
		name, pos = pos[0], pos[1:]
	}
	var extra []string
	if name == "" && !hasFlag(all, "generate-name", "name-template") {
		extra = append(extra, "--generate-name")
	}
	if name != "" {
		nsFlags, err := t.checkUnique(name)
		if err != nil {
			return nil, err
		}
		extra = append(extra, nsFlags...)
	}
	if _, ok := t.namespace(); ok && !hasFlag(all, "create-namespace") {
		extra = append(extra, "--create-namespace") // as Tiller did
	}
	if name != "" {
		pos = append([]string{name}, pos...)
	}
	return [][]string{call([]string{"install"}, pos, append(t.flags("install", "name"), extra...))}, nil
}

// helm2Name makes install's -n the release name, as in Helm 2; the
// namespace is --namespace only.
func (t *translator) helm2Name() {
	for _, its := range [][]item{t.global, t.items} {
		for i, it := range its {
			if it.flag == "namespace" && !strings.HasPrefix(it.toks[0], "--") {
				its[i].flag = "name"
			}
		}
	}
}

// checkUnique refuses a name some release has, in whatever namespace and
// state, as Tiller did. --replace reuses the name of an uninstalled or
// failed release, as in both Helm 2 and 3, in that release's namespace.
func (t *translator) checkUnique(name string) ([]string, error) {
	rs, err := t.find(name)
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	r := rs[0]
	ns, nsGiven := t.namespace()
	replaceable := r.Status == "uninstalled" || r.Status == "failed"
	if len(rs) == 1 && hasFlag(t.all(), "replace") && replaceable && (!nsGiven || ns == r.Namespace) {
		if !nsGiven {
			return []string{"--namespace", r.Namespace}, nil
		}
		return nil, nil
	}
	return nil, fmt.Errorf("a release named %q already exists (namespace %s, status %s)", name, r.Namespace, r.Status)
}

// upgrade X CHART upgrades X wherever it is. With --install and a
// namespace, an X elsewhere is refused rather than installed a second time.
func (t *translator) upgrade() ([][]string, error) {
	pos := t.positionals()
	if len(pos) == 0 {
		return nil, nil
	}
	all := t.all()
	install := hasFlag(all, "install")
	ns, nsGiven := t.namespace()
	var extra []string
	switch {
	case !nsGiven:
		nsFlags, err := t.resolve(pos[0])
		if err != nil {
			return nil, err
		}
		extra = nsFlags
	case install:
		if err := t.checkPlace(pos[0], ns); err != nil {
			return nil, err
		}
		if !hasFlag(all, "create-namespace") {
			extra = append(extra, "--create-namespace") // as Tiller did
		}
	}
	return [][]string{call([]string{"upgrade"}, pos, append(t.flags("upgrade"), extra...))}, nil
}

// checkPlace refuses to install name in ns when it exists elsewhere.
func (t *translator) checkPlace(name, ns string) error {
	rs, err := t.find(name)
	if err != nil || len(rs) == 0 || slices.ContainsFunc(rs, func(r Release) bool { return r.Namespace == ns }) {
		return err
	}
	return fmt.Errorf("a release named %q already exists (namespace %s, status %s)", name, rs[0].Namespace, rs[0].Status)
}

// resolve returns --namespace NS for release name when the user gave no
// namespace and name exists; not found, helm3 uses the current namespace
// (and reports the release missing, unless it is to be installed).
func (t *translator) resolve(name string) ([]string, error) {
	if _, ok := t.namespace(); ok {
		return nil, nil
	}
	ns, err := t.namespaceOf(name)
	if err != nil || ns == "" {
		return nil, err
	}
	return []string{"--namespace", ns}, nil
}

// list: Helm 2 listed every namespace, and took a filter as argument.
func (t *translator) list() ([][]string, error) {
	all := t.all()
	var extra []string
	if !hasFlag(all, "namespace", "all-namespaces") {
		extra = append(extra, "--all-namespaces")
	}
	pos := t.positionals()
	if len(pos) == 1 && !hasFlag(all, "filter") && !slices.ContainsFunc(all, isShort('f')) {
		extra = append(extra, "--filter", pos[0])
		pos = nil
	}
	// Helm 2's table unless the user asked for another form: Helm 3's
	// columns are in another order, with the status in lower case.
	if !hasFlag(all, "output", "short") && !slices.ContainsFunc(all, isShort('q')) && !slices.ContainsFunc(all, isShort('o')) {
		extra = append(extra, "--output", "json")
		t.table = true
	}
	return [][]string{call([]string{"list"}, pos, append(t.flags("list"), extra...))}, nil
}

// isShort matches the items given as -c.
func isShort(c byte) func(item) bool {
	return func(it item) bool {
		return it.isFlag() && len(it.toks[0]) >= 2 && it.toks[0][:2] == "-"+string(c)
	}
}

// uninstall: Helm 2's delete kept the release's history (and so its name)
// unless --purge. Releases are found in their namespaces, one helm3 call
// per namespace, in the order the user named them.
func (t *translator) uninstall() ([][]string, error) {
	pos := t.positionals()
	if len(pos) == 0 {
		return nil, nil
	}
	all := t.all()
	flags := t.flags("uninstall", "purge")
	if !hasFlag(all, "purge", "keep-history") {
		flags = append(flags, "--keep-history")
	}
	if _, ok := t.namespace(); ok {
		return [][]string{call([]string{"uninstall"}, pos, flags)}, nil
	}
	var order []string // namespaces; "" for releases not found
	byNS := map[string][]string{}
	for _, name := range pos {
		ns, err := t.namespaceOf(name)
		if err != nil {
			return nil, err
		}
		if _, seen := byNS[ns]; !seen {
			order = append(order, ns)
		}
		byNS[ns] = append(byNS[ns], name)
	}
	var calls [][]string
	for _, ns := range order {
		f := slices.Clone(flags)
		if ns != "" {
			f = append(f, "--namespace", ns)
		}
		calls = append(calls, call([]string{"uninstall"}, byNS[ns], f))
	}
	return calls, nil
}

// get [SUBCOMMAND] X; Helm 2's bare get X showed everything.
func (t *translator) get() ([][]string, error) {
	pos := t.positionals()
	words := []string{"get", "all"}
	if len(pos) > 0 && slices.Contains(getSubcommands, pos[0]) {
		words[1], pos = pos[0], pos[1:]
	}
	if len(pos) == 0 {
		return nil, nil
	}
	nsFlags, err := t.resolve(pos[0])
	if err != nil {
		return nil, err
	}
	return [][]string{call(words, pos, append(t.flags("get"), nsFlags...))}, nil
}

// named: the subcommands that act on one release, found in its namespace.
func (t *translator) named() ([][]string, error) {
	pos := t.positionals()
	if len(pos) == 0 {
		return nil, nil
	}
	canon := t.cmd
	if canon == "hist" {
		canon = "history"
	}
	nsFlags, err := t.resolve(pos[0])
	if err != nil {
		return nil, err
	}
	return [][]string{call([]string{canon}, pos, append(t.flags(canon), nsFlags...))}, nil
}
