package main

import (
	"context"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"sort"
	"strings"

	trivychecks "github.com/aquasecurity/trivy-checks"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/types"
)

// check is one CIS Kubernetes Benchmark rule of trivy-checks (a KCV id).
type check struct {
	ID, Title, Package string
	// Needs is what the rule reads: control-plane components (their Pods)
	// or node collector keys. A rule none of whose needs the node
	// provides found no input: it is counted as a failure, not a pass.
	Components []string
	Keys       []string
}

// Result is one check's outcome on this node.
type Result struct {
	ID      string   `json:"id"`
	Title   string   `json:"title"`
	Status  string   `json:"status"` // PASS, FAIL, SKIPPED (no input: counted as failed)
	Details []string `json:"details,omitempty"`
	// Accepted is the written reason a failure is accepted for.
	Accepted string `json:"accepted,omitempty"`
}

var (
	idRe        = regexp.MustCompile(`(?m)^#\s+id:\s*(KCV\d+)`)
	titleRe     = regexp.MustCompile(`(?m)^#\s+title:\s*"?([^"\n]*)"?`)
	packageRe   = regexp.MustCompile(`(?m)^package\s+(\S+)`)
	keyRe       = regexp.MustCompile(`\.info\.([A-Za-z]+)`)
	componentRe = regexp.MustCompile(`kubernetes\.is_(apiserver|controllermanager|scheduler|etcd)\(`)
	// A rule on kubernetes.containers that names no component reads every
	// container it is given.
	containersRe = regexp.MustCompile(`kubernetes\.containers\b`)
)

// anyComponent stands for "any control-plane Pod" in check.Components.
const anyComponent = "any component"

var componentOf = map[string]string{"apiserver": "kube-apiserver", "controllermanager": "kube-controller-manager",
	"scheduler": "kube-scheduler", "etcd": "etcd"}

// loadChecks parses the Kubernetes rules and their library from the
// trivy-checks module, as pinned in go.mod: nothing is downloaded.
func loadChecks() ([]check, map[string]*ast.Module, error) {
	modules := map[string]*ast.Module{}
	var checks []check
	add := func(fsys fs.FS, root string, keep func(path, src string)) error {
		return fs.WalkDir(fsys, root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".rego") || strings.HasSuffix(path, "_test.rego") {
				return err
			}
			raw, err := fs.ReadFile(fsys, path)
			if err != nil {
				return err
			}
			src := string(raw)
			m, err := ast.ParseModuleWithOpts(path, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			modules[path] = m
			if keep != nil {
				keep(path, src)
			}
			return nil
		})
	}
	// The Kubernetes library, and the one helper of the cloud library a
	// workload rule calls (the rest needs trivy's own builtins).
	for _, dir := range []string{"lib/kubernetes", "lib/cloud/metadata.rego"} {
		if err := add(trivychecks.EmbeddedLibraryFileSystem, dir, nil); err != nil {
			return nil, nil, err
		}
	}
	err := add(trivychecks.EmbeddedPolicyFileSystem, "checks/kubernetes", func(path, src string) {
		id := idRe.FindStringSubmatch(src)
		if id == nil {
			return // not a CIS benchmark rule (workload and RBAC checks)
		}
		c := check{ID: id[1], Package: packageRe.FindStringSubmatch(src)[1]}
		if t := titleRe.FindStringSubmatch(src); t != nil {
			c.Title = t[1]
		}
		for _, m := range componentRe.FindAllStringSubmatch(src, -1) {
			if comp := componentOf[m[1]]; !slices.Contains(c.Components, comp) {
				c.Components = append(c.Components, comp)
			}
		}
		if len(c.Components) == 0 && containersRe.MatchString(src) {
			c.Components = []string{anyComponent}
		}
		for _, m := range keyRe.FindAllStringSubmatch(src, -1) {
			if !slices.Contains(c.Keys, m[1]) {
				c.Keys = append(c.Keys, m[1])
			}
		}
		checks = append(checks, c)
	})
	sort.Slice(checks, func(i, j int) bool { return checks[i].ID < checks[j].ID })
	return checks, modules, err
}

// resultNew is trivy's builtin result.new(msg, object): the rules build
// their findings with it.
var (
	resultNewDecl = types.NewFunction(types.Args(types.S, types.A), types.A)
	resultNew     = rego.Function2(&rego.Function{Name: "result.new", Decl: resultNewDecl},
		func(_ rego.BuiltinContext, msg, obj *ast.Term) (*ast.Term, error) {
			return ast.ObjectTerm(ast.Item(ast.StringTerm("msg"), msg)), nil
		})
)

// evaluate runs every check against every input of the node.
func evaluate(ctx context.Context, checks []check, modules map[string]*ast.Module, n *node) ([]Result, error) {
	compiler := ast.NewCompiler().WithBuiltins(map[string]*ast.Builtin{
		"result.new": {Name: "result.new", Decl: resultNewDecl}})
	compiler.Compile(modules)
	if compiler.Failed() {
		return nil, fmt.Errorf("compiling the rules: %v", compiler.Errors)
	}
	var inputs []any
	have := map[string]bool{}
	for _, p := range n.Pods {
		inputs = append(inputs, p)
		have[p["metadata"].(map[string]any)["name"].(string)] = true
	}
	for _, ni := range n.NodeInfo {
		inputs = append(inputs, ni)
	}
	info := n.NodeInfo[0]["info"].(map[string]any)
	var out []Result
	for _, c := range checks {
		r := Result{ID: c.ID, Title: c.Title, Status: "PASS"}
		found := false
		for _, comp := range c.Components {
			found = found || have[comp] || comp == anyComponent && len(n.Pods) > 0
		}
		for _, k := range c.Keys {
			if _, ok := info[k]; ok {
				found = true
			}
		}
		if !found {
			r.Status = "SKIPPED"
			r.Details = []string{fmt.Sprintf("no input: needs %s", strings.Join(append(slices.Clone(c.Components), c.Keys...), ", "))}
			out = append(out, r)
			continue
		}
		pq, err := rego.New(rego.Compiler(compiler), rego.Query("data."+c.Package+".deny"), resultNew).PrepareForEval(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.ID, err)
		}
		for _, in := range inputs {
			rs, err := pq.Eval(ctx, rego.EvalInput(in))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.ID, err)
			}
			for _, res := range rs {
				for _, e := range res.Expressions {
					denies, _ := e.Value.([]any)
					for _, d := range denies {
						r.Status = "FAIL"
						if m, ok := d.(map[string]any); ok {
							r.Details = append(r.Details, fmt.Sprint(m["msg"]))
						}
					}
				}
			}
		}
		out = append(out, r)
	}
	return out, nil
}
