package plan

import (
	"fmt"
	"sort"
)

// Factory makes the executor of one leaf phase of its type, from the
// phase's own fields (Node, Data): never from its id.
type Factory func(ph *Phase) (Executor, error)

// Registry maps phase types to their executors' factories. Every operation
// registers the types it plans; a phase of a type nobody registered is an
// error before anything runs.
type Registry map[string]Factory

// Register adds typ; registering a type twice is a programming error.
func (r Registry) Register(typ string, f Factory) {
	if _, dup := r[typ]; dup {
		panic(fmt.Sprintf("plan: phase type %q registered twice", typ))
	}
	r[typ] = f
}

// make dispatches on the phase's type.
func (r Registry) make(ph *Phase) (Executor, error) {
	f, ok := r[ph.Type]
	if !ok {
		return nil, fmt.Errorf("no executor for phase type %q (known: %v)", ph.Type, r.types())
	}
	return f(ph)
}

// Check reports the first leaf of p whose type is not registered, so that
// an operation fails before its first phase rather than half way.
func (r Registry) Check(p *Plan) error {
	for _, ph := range p.Leaves() {
		if _, ok := r[ph.Type]; !ok {
			return fmt.Errorf("phase %s: no executor for phase type %q (known: %v)", ph.ID, ph.Type, r.types())
		}
	}
	return nil
}

func (r Registry) types() []string {
	out := make([]string, 0, len(r))
	for t := range r {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
