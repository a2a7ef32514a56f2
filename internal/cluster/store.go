package cluster

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/opengravity/gravity/internal/plan"
)

// Store is an operation's plan store that keeps the plan on the local
// disk (so that an installer can always resume, even with the API down)
// and, once the cluster can hold it, in the cluster too.
type Store struct {
	Local plan.FileStore
	// Ready says whether the cluster can hold the plan yet (its resource
	// definitions exist); Clients reaches it.
	Ready   func(p *plan.Plan) bool
	Clients func() (Clients, error)
	Log     *slog.Logger
}

func (s Store) Load(ctx context.Context) (*plan.Plan, error) { return s.Local.Load(ctx) }

// Save writes the plan locally, then mirrors it into the cluster. A
// failed mirror is logged, not fatal: the next save writes it again and
// the local copy is the one resume reads.
func (s Store) Save(ctx context.Context, p *plan.Plan) error {
	if err := s.Local.Save(ctx, p); err != nil {
		return err
	}
	if s.Ready == nil || !s.Ready(p) {
		return nil
	}
	c, err := s.Clients()
	if err == nil {
		err = SaveOperation(ctx, c, p)
	}
	if err != nil && s.Log != nil {
		s.Log.Warn("operation not saved in the cluster yet", "operation", p.OperationID, "error", fmt.Sprint(err))
	}
	return nil
}
