//go:build linux

package testhost

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// errNoIPTables names the fix, since a fresh machine of this kind lacks it.
var errNoIPTables = errors.New("iptables not found in PATH: install it (apt-get install iptables)")

// savedRule is one "-A" line of iptables-save, with its table and counters.
type savedRule struct {
	Table   string
	Chain   string
	Args    []string // the rule after "-A CHAIN"
	Packets int64
}

// comment is the value of the rule's comment match, "" if it has none.
func (r savedRule) comment() string {
	for i := 0; i+1 < len(r.Args); i++ {
		if r.Args[i] == "--comment" {
			return strings.Trim(r.Args[i+1], `"`)
		}
	}
	return ""
}

// parseIPTablesSave reads iptables-save output, with or without -c counters.
func parseIPTablesSave(data string) ([]savedRule, error) {
	var rules []savedRule
	table := ""
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, "[") || strings.HasPrefix(line, "-A "):
			r, err := parseSavedRule(line)
			if err != nil {
				return nil, fmt.Errorf("iptables-save line %d: %w", n, err)
			}
			if table == "" {
				return nil, fmt.Errorf("iptables-save line %d: rule outside a table", n)
			}
			r.Table = table
			rules = append(rules, r)
		}
	}
	return rules, sc.Err()
}

func parseSavedRule(line string) (savedRule, error) {
	var r savedRule
	f := strings.Fields(line)
	if len(f) > 0 && strings.HasPrefix(f[0], "[") {
		pk, _, ok := strings.Cut(strings.Trim(f[0], "[]"), ":")
		n, err := strconv.ParseInt(pk, 10, 64)
		if !ok || err != nil || n < 0 {
			return r, fmt.Errorf("bad counters %q", f[0])
		}
		r.Packets, f = n, f[1:]
	}
	if len(f) < 2 || f[0] != "-A" {
		return r, fmt.Errorf("not a rule: %q", line)
	}
	r.Chain, r.Args = f[1], f[2:]
	return r, nil
}

func haveIPTables() bool {
	_, err := exec.LookPath("iptables")
	return err == nil
}

// rulesTagged lists the rules whose comment is exactly tag.
func rulesTagged(ctx context.Context, tag string) ([]savedRule, error) {
	out, err := run(ctx, "iptables-save", "-c")
	if err != nil {
		return nil, err
	}
	all, err := parseIPTablesSave(out)
	if err != nil {
		return nil, err
	}
	var mine []savedRule
	for _, r := range all {
		if r.comment() == tag {
			mine = append(mine, r)
		}
	}
	return mine, nil
}

// addRule appends (or with insert, prepends) a rule tagged with the prefix,
// so that Cleanup can find it after a crash.
func addRule(ctx context.Context, prefix, table, chain string, insert bool, spec ...string) error {
	op := "-A"
	if insert {
		op = "-I"
	}
	args := append([]string{"-w", "-t", table, op, chain}, spec...)
	args = append(args, "-m", "comment", "--comment", prefix)
	_, err := run(ctx, "iptables", args...)
	return err
}

func deleteRules(ctx context.Context, prefix string) error {
	if !haveIPTables() {
		return nil // nothing can have been added without it
	}
	rules, err := rulesTagged(ctx, prefix)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range rules {
		args := append([]string{"-w", "-t", r.Table, "-D", r.Chain}, r.Args...)
		if _, err := run(ctx, "iptables", args...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
