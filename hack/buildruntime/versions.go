package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
)

// versionLine matches the `NAME := value` assignments of versions.mk; make
// syntax beyond that (conditionals, includes) is not used there and is refused
// so that this parser and make can never disagree (hence no # in values:
// make would read a comment there).
var versionLine = regexp.MustCompile(`^([A-Z][A-Z0-9_]*)\s*:?=\s*([^\s#]+)\s*$`)

// parseVersions reads versions.mk.
func parseVersions(data []byte) (map[string]string, error) {
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := versionLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("versions.mk line %d: want NAME := VALUE, got %q", n, line)
		}
		if _, dup := vars[m[1]]; dup {
			return nil, fmt.Errorf("versions.mk line %d: %s set twice", n, m[1])
		}
		vars[m[1]] = m[2]
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read versions.mk: %w", err)
	}
	return vars, nil
}

// pin says that module dir must require path at the version versions.mk
// holds in variable Var.
type pin struct {
	Dir, Path, Var string
}

// goMod is the part of `go mod edit -json` output the checks read.
type goMod struct {
	Require []struct{ Path, Version string }
	Replace []struct {
		Old struct{ Path string }
		New struct{ Path, Version string }
	}
}

func readGoMod(ctx context.Context, dir string) (*goMod, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "edit", "-json")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go mod edit -json in %s: %w", dir, err)
	}
	var m goMod
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("parse go.mod of %s: %w", dir, err)
	}
	return &m, nil
}

// checkPins returns every disagreement between versions.mk and the go.mod
// files, so that a bump in one place and not the other fails loudly.
func checkPins(ctx context.Context, root string, vars map[string]string, pins []pin) error {
	var problems []string
	mods := map[string]*goMod{}
	for _, p := range pins {
		want, ok := vars[p.Var]
		if !ok {
			problems = append(problems, fmt.Sprintf("versions.mk does not set %s", p.Var))
			continue
		}
		m, ok := mods[p.Dir]
		if !ok {
			var err error
			if m, err = readGoMod(ctx, root+"/"+p.Dir); err != nil {
				return err
			}
			mods[p.Dir] = m
		}
		if got := required(m, p.Path); got != want {
			problems = append(problems, fmt.Sprintf("%s/go.mod requires %s %s, versions.mk %s = %s",
				p.Dir, p.Path, orNone(got), p.Var, want))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("versions.mk and runtime go.mod files disagree:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

func required(m *goMod, path string) string {
	for _, r := range m.Require {
		if r.Path == path {
			return r.Version
		}
	}
	return ""
}

func orNone(v string) string {
	if v == "" {
		return "(nothing)"
	}
	return v
}

// stagingVersion is the version Kubernetes publishes its staging modules
// (k8s.io/api, client-go, ...) under for a release: v1.37.2 -> v0.37.2.
func stagingVersion(kube string) (string, error) {
	rest, ok := strings.CutPrefix(kube, "v1.")
	if !ok || rest == "" {
		return "", fmt.Errorf("kubernetes version %q is not v1.MINOR.PATCH", kube)
	}
	return "v0." + rest, nil
}

// checkStaging makes sure every k8s.io module that k8s.io/kubernetes
// replaces by a staging directory is replaced by its published version of the
// same release: a stale replace line builds a mixed Kubernetes that may still
// compile.
func checkStaging(ctx context.Context, dir, kube string, staging []string) error {
	want, err := stagingVersion(kube)
	if err != nil {
		return err
	}
	m, err := readGoMod(ctx, dir)
	if err != nil {
		return err
	}
	got := map[string]string{}
	for _, r := range m.Replace {
		got[r.Old.Path] = r.New.Path + "@" + r.New.Version
	}
	var problems []string
	for _, s := range staging {
		if g := got[s]; g != s+"@"+want {
			problems = append(problems, fmt.Sprintf("replace %s => %s, want %s %s", s, orNone(g), s, want))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s/go.mod staging replaces disagree with Kubernetes %s:\n  %s",
			dir, kube, strings.Join(problems, "\n  "))
	}
	return nil
}
