// Package helmcompat translates Helm 2 command lines into Helm 3 ones, so
// that hooks written for Helm 2 run unchanged on upstream Helm 3. It is
// pure: the one thing it needs from the cluster, the list of releases, it
// asks for through a Lookup, and it runs nothing itself.
package helmcompat

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Release is what a lookup needs to know of a release: one entry of
// `helm3 list -o json`.
type Release struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Status    string `json:"status"`
}

// Lookup lists every release of the cluster, whatever its namespace and
// status. conn are the user's connection flags (--kube-context, …), to be
// given to the list: see ListArgs.
type Lookup func(conn []string) ([]Release, error)

// ListArgs is the helm3 command line that lists what a Lookup returns.
// --max 0: the default, 256, would hide releases of a bigger cluster.
func ListArgs(conn []string) []string {
	return append([]string{"list", "--all-namespaces", "--all", "--max", "0", "--output", "json"}, conn...)
}

// ParseReleases parses ListArgs' output.
func ParseReleases(data []byte) ([]Release, error) {
	var rs []Release
	if err := json.Unmarshal(data, &rs); err != nil {
		return nil, fmt.Errorf("parsing helm list output: %w", err)
	}
	return rs, nil
}

// Plan is what to run for one Helm 2 command line.
type Plan struct {
	// Calls are helm3 command lines (without the program name), to run in
	// order, stopping at the first that fails. None: exit 0.
	Calls [][]string
	// Notes tell the user what was changed, for stderr: stdout is the
	// command's own output, which scripts parse.
	Notes []string
	// Helm2List: the one call lists releases as JSON, to be printed as
	// Helm 2's table (WriteHelm2List), not passed through.
	Helm2List bool
}

// translator holds one translation's state: the parsed command line and
// the releases, listed at most once.
type translator struct {
	cmd      string // the subcommand as given (ls, del, …)
	global   []item // flags before the subcommand
	items    []item // everything after it
	lookup   Lookup
	releases []Release
	listed   bool
	notes    []string
	table    bool // see Plan.Helm2List
}

// Translate turns a Helm 2 command line (without the program name) into
// helm3 calls. Errors are the user's (e.g. a release name already taken),
// or the lookup's; either way nothing should run.
func Translate(args []string, lookup Lookup) (Plan, error) {
	items := parse(args)
	ci := slices.IndexFunc(items, func(it item) bool { return !it.isFlag() })
	if ci < 0 || hasFlag(items, "help") || hasFlag(items, "h") {
		return passThrough(args, items), nil
	}
	t := &translator{cmd: items[ci].value, global: items[:ci], items: items[ci+1:], lookup: lookup}
	calls, err := t.translate()
	if err != nil {
		return Plan{}, err
	}
	if calls == nil {
		return passThrough(args, items), nil
	}
	return Plan{Calls: calls, Notes: t.notes, Helm2List: t.table}, nil
}

// passThrough runs args as given but for Helm 2's Tiller flags, which
// helm3 would refuse.
func passThrough(args []string, items []item) Plan {
	var out []string
	var notes []string
	dropped := false
	for _, it := range items {
		if it.isFlag() && helm2Only[it.flag] {
			notes = append(notes, droppedNote(it))
			dropped = true
			continue
		}
		out = append(out, it.toks...)
	}
	if !dropped {
		out = args // untouched, -- and all
	}
	return Plan{Calls: [][]string{nonNil(out)}, Notes: notes}
}

func droppedNote(it item) string {
	return fmt.Sprintf("ignoring --%s: Helm 3 has no Tiller", it.flag)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// translate dispatches on the subcommand; nil calls: pass through.
func (t *translator) translate() ([][]string, error) {
	switch t.cmd {
	case "init", "reset":
		t.notes = append(t.notes, fmt.Sprintf("helm %s: nothing to do, Helm 3 has no Tiller", t.cmd))
		return [][]string{}, nil
	case "install":
		return t.install()
	case "upgrade":
		return t.upgrade()
	case "list", "ls":
		return t.list()
	case "delete", "del", "uninstall", "un":
		return t.uninstall()
	case "get":
		return t.get()
	case "rollback", "history", "hist", "status", "test":
		return t.named()
	}
	return nil, nil
}

func hasFlag(items []item, names ...string) bool {
	return slices.ContainsFunc(items, func(it item) bool { return it.isFlag() && slices.Contains(names, it.flag) })
}

// flagValue is the last value given to a flag, as pflag keeps the last.
func flagValue(items []item, name string) (string, bool) {
	for i := len(items) - 1; i >= 0; i-- {
		if items[i].flag == name && items[i].hasValue {
			return items[i].value, true
		}
	}
	return "", false
}

// all is every item, global flags first.
func (t *translator) all() []item { return append(slices.Clone(t.global), t.items...) }

func (t *translator) positionals() []string {
	var ps []string
	for _, it := range t.items {
		if !it.isFlag() {
			ps = append(ps, it.value)
		}
	}
	return ps
}

// namespace is the namespace the user asked for, if any.
func (t *translator) namespace() (string, bool) { return flagValue(t.all(), "namespace") }

// conn are the user's connection flags, as given.
func (t *translator) conn() []string {
	var out []string
	for _, it := range t.all() {
		if connFlags[it.flag] {
			out = append(out, it.toks...)
		}
	}
	return out
}

// find returns the releases named name, listing them the first time.
func (t *translator) find(name string) ([]Release, error) {
	if !t.listed {
		rs, err := t.lookup(t.conn())
		if err != nil {
			return nil, fmt.Errorf("looking up release %q: %w", name, err)
		}
		t.releases, t.listed = rs, true
	}
	var out []Release
	for _, r := range t.releases {
		if r.Name == name {
			out = append(out, r)
		}
	}
	return out, nil
}

// namespaceOf is the namespace of release name; "" if there is none.
// Helm 3 lets two namespaces hold the same name: then the user must say.
func (t *translator) namespaceOf(name string) (string, error) {
	rs, err := t.find(name)
	if err != nil || len(rs) == 0 {
		return "", err
	}
	var nss []string
	for _, r := range rs {
		if !slices.Contains(nss, r.Namespace) {
			nss = append(nss, r.Namespace)
		}
	}
	if len(nss) > 1 {
		return "", fmt.Errorf("release %q exists in namespaces %s: give --namespace", name, strings.Join(nss, ", "))
	}
	return nss[0], nil
}
