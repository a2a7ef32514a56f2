// Package plan is the operation engine shared by every operation (install,
// expand, shrink): an operation's plan as persisted data, the pure rules
// that move it forward (which phase runs next, what may be executed or
// rolled back, how states change), and the runner that executes typed
// phases through executors registered by type (registry.go). The pure core
// does no I/O; the runner persists every change before and after a phase
// runs, so an interrupted operation resumes from the plan alone.
package plan

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// State of a phase. A group's state is derived from its children.
type State string

const (
	Unstarted  State = "unstarted"
	InProgress State = "in_progress"
	Completed  State = "completed"
	Failed     State = "failed"
	RolledBack State = "rolled_back"
)

// SchemaVersion is the version of the plan's persisted form this build
// writes and reads; a plan from a newer gravity is refused rather than
// half understood. Version 1 plans had no phase types.
const SchemaVersion = 2

// Plan is an operation's phases, in the order they run.
type Plan struct {
	Version       int    `json:"version"`
	OperationID   string `json:"operationID"`
	OperationType string `json:"operationType"` // "install", "expand", "shrink"
	ClusterName   string `json:"clusterName"`
	// Description says what the operation does, for status
	// ("Join node node-2 (10.0.0.2) as node").
	Description string `json:"description,omitempty"`
	// Data is the operation's own parameters (the joining node, its role).
	Data    map[string]string `json:"data,omitempty"`
	Created time.Time         `json:"created"`
	Phases  []*Phase          `json:"phases"`
}

// Phase is one step (a leaf, run by an executor) or a group of steps.
type Phase struct {
	ID          string `json:"id"` // "/masters/10.0.0.1/runtime", Gravity's ids
	Description string `json:"description"`
	// Type names the executor of a leaf (registered in a Registry); the
	// id is only its place in the plan.
	Type string `json:"type,omitempty"`
	// Node is where the phase runs (its advertise IP); empty is the
	// installer.
	Node string `json:"node,omitempty"`
	// Requires lists phases that must be completed first.
	Requires []string `json:"requires,omitempty"`
	// Irreversible phases cannot be rolled back; the plan says so up
	// front rather than pretending with a rollback that does nothing.
	Irreversible bool `json:"irreversible,omitempty"`
	// Data is the executor's input, e.g. the system app a phase installs.
	Data map[string]string `json:"data,omitempty"`

	State    State     `json:"state"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	Error    string    `json:"error,omitempty"`

	Phases []*Phase `json:"phases,omitempty"`
}

// Leaves returns the plan's runnable phases in order.
func (p *Plan) Leaves() []*Phase {
	var out []*Phase
	var walk func([]*Phase)
	walk = func(ps []*Phase) {
		for _, ph := range ps {
			if len(ph.Phases) == 0 {
				out = append(out, ph)
			}
			walk(ph.Phases)
		}
	}
	walk(p.Phases)
	return out
}

// Find returns the phase (leaf or group) with id.
func (p *Plan) Find(id string) (*Phase, error) {
	var found *Phase
	var walk func([]*Phase)
	walk = func(ps []*Phase) {
		for _, ph := range ps {
			if ph.ID == id {
				found = ph
				return
			}
			walk(ph.Phases)
		}
	}
	walk(p.Phases)
	if found == nil {
		return nil, fmt.Errorf("no phase %q in the plan (see `gravity plan`)", id)
	}
	return found, nil
}

// leavesOf returns id's leaves: itself when it is a leaf.
func (p *Plan) leavesOf(id string) ([]*Phase, error) {
	ph, err := p.Find(id)
	if err != nil {
		return nil, err
	}
	sub := &Plan{Phases: []*Phase{ph}}
	return sub.Leaves(), nil
}

// StateOf is a phase's state; a group's is derived from its leaves: failed
// if any failed, completed if all completed, rolled back if all that ran
// were rolled back (an operation undone half way is rolled back, not
// unstarted), in progress once any started.
func (ph *Phase) StateOf() State {
	if len(ph.Phases) == 0 {
		if ph.State == "" {
			return Unstarted
		}
		return ph.State
	}
	counts := map[State]int{}
	for _, c := range ph.Phases {
		counts[c.StateOf()]++
	}
	n := len(ph.Phases)
	switch {
	case counts[Failed] > 0:
		return Failed
	case counts[Completed] == n:
		return Completed
	case counts[RolledBack] > 0 && counts[Unstarted]+counts[RolledBack] == n:
		return RolledBack
	case counts[Unstarted] == n:
		return Unstarted
	}
	return InProgress
}

// Span is a group's start (earliest child) and finish (latest, once all
// are done).
func (ph *Phase) Span() (start, finish time.Time) {
	if len(ph.Phases) == 0 {
		return ph.Started, ph.Finished
	}
	for _, c := range ph.Phases {
		s, f := c.Span()
		if !s.IsZero() && (start.IsZero() || s.Before(start)) {
			start = s
		}
		if f.After(finish) {
			finish = f
		}
	}
	if ph.StateOf() != Completed {
		finish = time.Time{}
	}
	return start, finish
}

// State of the whole plan, derived like a group's.
func (p *Plan) State() State { return (&Phase{Phases: p.Phases}).StateOf() }

// Done reports whether every phase completed.
func (p *Plan) Done() bool { return p.State() == Completed }

// ErrBlocked is returned by Next when the next phase failed: the operator
// resumes (retrying it) or rolls back.
var ErrBlocked = errors.New("a phase failed")

// Next returns the first leaf that is not completed and whose requirements
// are, or nil when the plan is done. A phase left in progress by a crash
// comes next again: phases are idempotent. A failed phase is returned with
// ErrBlocked unless retry is set.
func (p *Plan) Next(retry bool) (*Phase, error) {
	for _, ph := range p.Leaves() {
		switch ph.StateOf() {
		case Completed:
			continue
		case Failed:
			if !retry {
				return ph, fmt.Errorf("phase %s: %w: %s", ph.ID, ErrBlocked, ph.Error)
			}
		}
		if err := p.requiresDone(ph); err != nil {
			return nil, err
		}
		return ph, nil
	}
	return nil, nil
}

func (p *Plan) requiresDone(ph *Phase) error {
	for _, id := range ph.Requires {
		req, err := p.Find(id)
		if err != nil {
			return fmt.Errorf("phase %s requires %w", ph.ID, err)
		}
		if st := req.StateOf(); st != Completed {
			return fmt.Errorf("phase %s requires %s, which is %s", ph.ID, id, st)
		}
	}
	return nil
}

// CheckExecute says whether leaf id may be executed by hand: its
// requirements must be completed, and a completed phase runs again only
// with force.
func (p *Plan) CheckExecute(id string, force bool) ([]*Phase, error) {
	leaves, err := p.leavesOf(id)
	if err != nil {
		return nil, err
	}
	var todo []*Phase
	for _, ph := range leaves {
		if ph.StateOf() == Completed && !force {
			continue
		}
		if err := p.requiresDone(ph); err != nil && !force {
			return nil, err
		}
		todo = append(todo, ph)
	}
	if len(todo) == 0 {
		return nil, fmt.Errorf("phase %s is already completed (use --force to run it again)", id)
	}
	return todo, nil
}

// RollbackOrder lists, last first, the leaves of id to roll back: those
// that started. Leaves that ran after them must be rolled back first, so
// that state is undone in reverse.
func (p *Plan) RollbackOrder(id string, force bool) ([]*Phase, error) {
	leaves, err := p.leavesOf(id)
	if err != nil {
		return nil, err
	}
	var todo []*Phase
	for _, ph := range slices.Backward(leaves) {
		switch ph.StateOf() {
		case Unstarted, RolledBack:
			continue
		}
		if ph.Irreversible {
			return nil, fmt.Errorf("phase %s cannot be rolled back", ph.ID)
		}
		todo = append(todo, ph)
	}
	if len(todo) == 0 {
		return nil, fmt.Errorf("phase %s has nothing to roll back", id)
	}
	if !force {
		if err := p.laterStarted(todo[0]); err != nil {
			return nil, err
		}
	}
	return todo, nil
}

// laterStarted refuses to roll back ph while a later phase still holds
// its changes.
func (p *Plan) laterStarted(ph *Phase) error {
	all := p.Leaves()
	i := slices.Index(all, ph)
	for _, later := range all[i+1:] {
		switch later.StateOf() {
		case Completed, Failed, InProgress:
			return fmt.Errorf("roll back %s first: it ran after %s", later.ID, ph.ID)
		}
	}
	return nil
}

// RollbackAll lists every started leaf, last first: the whole operation
// undone.
func (p *Plan) RollbackAll() []*Phase {
	var todo []*Phase
	for _, ph := range slices.Backward(p.Leaves()) {
		switch ph.StateOf() {
		case Completed, Failed, InProgress:
			todo = append(todo, ph)
		}
	}
	return todo
}

// Transitions. They take the time so the core stays deterministic.

func (ph *Phase) Start(now time.Time) {
	ph.State, ph.Started, ph.Finished, ph.Error = InProgress, now, time.Time{}, ""
}

func (ph *Phase) Complete(now time.Time) { ph.State, ph.Finished = Completed, now }

func (ph *Phase) Fail(err error, now time.Time) {
	ph.State, ph.Finished, ph.Error = Failed, now, err.Error()
}

func (ph *Phase) RollBack(now time.Time) {
	ph.State, ph.Finished, ph.Error = RolledBack, now, ""
}

// Validate checks a plan read from disk or built by a planner: unique ids,
// requirements that exist and come earlier.
func (p *Plan) Validate() error {
	if p.Version != SchemaVersion {
		return fmt.Errorf("plan schema version %d is not %d, the version this gravity reads", p.Version, SchemaVersion)
	}
	seen := map[string]bool{}
	var walk func([]*Phase) error
	walk = func(ps []*Phase) error {
		for _, ph := range ps {
			if ph.ID == "" || ph.ID[0] != '/' {
				return fmt.Errorf("phase id %q must start with /", ph.ID)
			}
			if seen[ph.ID] {
				return fmt.Errorf("phase id %s is used twice", ph.ID)
			}
			for _, r := range ph.Requires {
				if !seen[r] {
					return fmt.Errorf("phase %s requires %s, which does not come before it", ph.ID, r)
				}
			}
			seen[ph.ID] = true
			if len(ph.Phases) == 0 && ph.Type == "" {
				return fmt.Errorf("phase %s has no type", ph.ID)
			}
			if err := walk(ph.Phases); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(p.Phases)
}
