package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/opengravity/gravity/internal/atomicfile"
)

// Executor runs one leaf phase. Execute must be idempotent: after a crash
// the phase runs again from the start. Rollback undoes what Execute did
// and must also work on a half-done Execute.
type Executor interface {
	Execute(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// Store persists a plan.
type Store interface {
	Load(ctx context.Context) (*Plan, error)
	Save(ctx context.Context, p *Plan) error
}

// Event is one phase transition, for progress output.
type Event struct {
	Phase *Phase
	State State
	Err   error
}

// Runner executes phases, saving the plan before and after each.
type Runner struct {
	Store Store
	// Executors makes each leaf's executor from its type.
	Executors Registry
	Now       func() time.Time
	Progress  func(Event)
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now().UTC()
}

func (r *Runner) emit(ph *Phase, err error) {
	if r.Progress != nil {
		r.Progress(Event{Phase: ph, State: ph.StateOf(), Err: err})
	}
}

// Resume runs every remaining phase in order, retrying a failed one.
func (r *Runner) Resume(ctx context.Context) (*Plan, error) {
	for {
		p, err := r.Store.Load(ctx)
		if err != nil {
			return nil, err
		}
		if err := r.Executors.Check(p); err != nil {
			return p, err
		}
		ph, err := p.Next(true)
		if err != nil || ph == nil {
			return p, err
		}
		if err := r.execute(ctx, p, ph); err != nil {
			return p, err
		}
	}
}

// Execute runs phase id (a leaf or every leaf of a group) by hand.
func (r *Runner) Execute(ctx context.Context, id string, force bool) (*Plan, error) {
	p, err := r.Store.Load(ctx)
	if err != nil {
		return nil, err
	}
	todo, err := p.CheckExecute(id, force)
	if err != nil {
		return p, err
	}
	for _, ph := range todo {
		if err := r.execute(ctx, p, ph); err != nil {
			return p, err
		}
	}
	return p, nil
}

func (r *Runner) execute(ctx context.Context, p *Plan, ph *Phase) error {
	ex, err := r.Executors.make(ph)
	if err != nil {
		return fmt.Errorf("phase %s: %w", ph.ID, err)
	}
	ph.Start(r.now())
	if err := r.Store.Save(ctx, p); err != nil {
		return err
	}
	r.emit(ph, nil)
	runErr := ex.Execute(ctx)
	if runErr != nil {
		if ctx.Err() != nil {
			// Interrupted: the phase stays in progress, as after a crash.
			return fmt.Errorf("phase %s interrupted: %w", ph.ID, runErr)
		}
		ph.Fail(runErr, r.now())
	} else {
		ph.Complete(r.now())
	}
	// The outcome is saved even if ctx ended meanwhile.
	if err := r.Store.Save(context.WithoutCancel(ctx), p); err != nil {
		return errors.Join(runErr, err)
	}
	r.emit(ph, runErr)
	if runErr != nil {
		return fmt.Errorf("phase %s: %w", ph.ID, runErr)
	}
	return nil
}

// Rollback undoes phase id (or, with id empty, the whole operation) in
// reverse order.
func (r *Runner) Rollback(ctx context.Context, id string, force bool) (*Plan, error) {
	p, err := r.Store.Load(ctx)
	if err != nil {
		return nil, err
	}
	todo := p.RollbackAll()
	if id != "" {
		if todo, err = p.RollbackOrder(id, force); err != nil {
			return p, err
		}
	}
	for _, ph := range todo {
		ex, err := r.Executors.make(ph)
		if err != nil {
			return p, fmt.Errorf("phase %s: %w", ph.ID, err)
		}
		if ph.Irreversible {
			return p, fmt.Errorf("phase %s cannot be rolled back", ph.ID)
		}
		if err := ex.Rollback(ctx); err != nil {
			return p, fmt.Errorf("rolling back %s: %w", ph.ID, err)
		}
		ph.RollBack(r.now())
		if err := r.Store.Save(context.WithoutCancel(ctx), p); err != nil {
			return p, err
		}
		r.emit(ph, nil)
	}
	return p, nil
}

// FileStore keeps the plan as JSON in one file, replaced atomically.
type FileStore struct{ Path string }

// ErrNoPlan means no operation was started on this node.
var ErrNoPlan = errors.New("no operation plan")

func (s FileStore) Load(context.Context) (*Plan, error) {
	data, err := os.ReadFile(s.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s", ErrNoPlan, s.Path)
	}
	if err != nil {
		return nil, err
	}
	return Decode(data, s.Path)
}

// Decode parses and validates a plan.
func Decode(data []byte, source string) (*Plan, error) {
	var p Plan
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("plan %s: %w", source, err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("plan %s: %w", source, err)
	}
	return &p, nil
}

func (s FileStore) Save(_ context.Context, p *Plan) error {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(s.Path, data, 0o600)
}

// WriteFileAtomic creates path's directory (0700: plans and configs hold
// secrets) and replaces path with data, never leaving half of it.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, mode)
}
