// Package preflight runs the named host checks `gravity install` makes
// before it changes anything on a host. Every check only reads the host,
// except disk-speed, which writes and removes one temp file in the
// nearest existing ancestor of a directory it measures; a failed
// preflight therefore leaves the host as it found it.
package preflight

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opengravity/gravity/internal/atomicfile"
)

// Status is the outcome of one check.
type Status string

const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Result is what one check found. Message is written for the person
// running install: it says what is wrong and, where possible, what to do.
type Result struct {
	Name    string         `json:"name"`
	Status  Status         `json:"status"`
	Message string         `json:"message"`
	Detail  map[string]any `json:"detail,omitempty"`
}

// Report is the outcome of a preflight run, in check order.
type Report struct {
	Node    string    `json:"node"`
	Time    time.Time `json:"time"`
	Results []Result  `json:"results"`
	Skipped []string  `json:"skipped,omitempty"`
}

// checkFunc is one check; env carries the host and requirements so each
// check reads its inputs through Host.Root and tests can use fixture trees.
type checkFunc func(ctx context.Context, e *env) Result

type check struct {
	name string
	run  checkFunc
}

// checks is the fixed, user-visible order; names are a stable interface
// (--skip-check, JSON reports), so never rename one.
var checks = []check{
	{"os", checkOS},
	{"cpu", checkCPU},
	{"ram", checkRAM},
	{"disk-space", checkDiskSpace},
	{"disk-speed", checkDiskSpeed},
	{"ports", checkPorts},
	{"kernel-modules", checkKernelModules},
	{"tools", checkTools},
	{"conflicting-software", checkConflicting},
	{"time", checkTime},
	{"cgroups", checkCgroups},
	{"routes", checkRoutes},
}

// Checks returns every check's name in run order.
func Checks() []string {
	names := make([]string, len(checks))
	for i, c := range checks {
		names[i] = c.name
	}
	return names
}

// ValidateSkip reports an error naming the valid checks if skip holds a
// name that is not one; the CLI can call it before doing anything else.
func ValidateSkip(skip []string) error {
	names := Checks()
	var unknown []string
	for _, s := range skip {
		if !slices.Contains(names, s) {
			unknown = append(unknown, fmt.Sprintf("%q", s))
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("unknown preflight check %s (valid checks: %s)",
			strings.Join(unknown, ", "), strings.Join(names, ", "))
	}
	return nil
}

// Run runs every check not named in skip. A check that fails is reported
// in the Report, not as an error: the error is only for bad arguments or a
// cancelled context.
func Run(ctx context.Context, h Host, req Requirements, skip []string) (Report, error) {
	if err := ValidateSkip(skip); err != nil {
		return Report{}, err
	}
	e := newEnv(h, req)
	rep := Report{Node: e.nodeName(), Time: e.host.Now().UTC()}
	for _, c := range checks {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("preflight interrupted before %s: %w", c.name, err)
		}
		if slices.Contains(skip, c.name) {
			rep.Skipped = append(rep.Skipped, c.name)
			continue
		}
		r := c.run(ctx, e)
		r.Name = c.name
		rep.Results = append(rep.Results, r)
	}
	return rep, nil
}

// Failed returns the results with status fail.
func (r Report) Failed() []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Status == Fail {
			out = append(out, res)
		}
	}
	return out
}

// WriteJSON writes the report to path atomically, so a reader never sees
// half a report.
func (r Report) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode preflight report: %w", err)
	}
	data = append(data, '\n')
	// The report holds nothing secret: readable by all.
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("preflight report: %w", err)
	}
	return nil
}

func pass(format string, a ...any) Result {
	return Result{Status: Pass, Message: fmt.Sprintf(format, a...)}
}
func warn(format string, a ...any) Result {
	return Result{Status: Warn, Message: fmt.Sprintf(format, a...)}
}
func fail(format string, a ...any) Result {
	return Result{Status: Fail, Message: fmt.Sprintf(format, a...)}
}

// with attaches machine-readable detail to a result.
func (r Result) with(kv ...any) Result {
	if r.Detail == nil {
		r.Detail = map[string]any{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		r.Detail[fmt.Sprint(kv[i])] = kv[i+1]
	}
	return r
}
