package join

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/opengravity/gravity/internal/clusterservice"
	"github.com/opengravity/gravity/internal/plan"
)

// Resume continues the join this node started (`gravity plan resume`).
func Resume(ctx context.Context, o Options) error { return Join(ctx, o) }

// Execute runs one phase of the pending join by hand.
func Execute(ctx context.Context, o Options, phase string, force bool) error {
	rec, c, err := reconnect(ctx, o)
	if err != nil {
		return err
	}
	r, m := runner(o, rec, c, printer{o.Out})
	_, err = r.Execute(ctx, phase, force)
	m.Flush()
	return err
}

// Rollback undoes the pending join, or one phase of it. Once the whole
// operation is rolled back this node holds nothing of the cluster and may
// join again.
func Rollback(ctx context.Context, o Options, phase string, force bool) error {
	rec, c, err := reconnect(ctx, o)
	if rec == nil {
		return err
	}
	if err != nil {
		// The node's side can be undone without the cluster; the
		// admission's rollback then says what is left to do.
		fmt.Fprintf(o.Out, "warning: %v\n", err)
	}
	p := printer{o.Out}
	r, m := runner(o, rec, c, p)
	pl, err := r.Rollback(ctx, phase, force)
	m.Flush()
	if err != nil {
		return err
	}
	if phase == "" && pl.State() == plan.RolledBack {
		if err := errors.Join(os.Remove(recordPath(o.StateDir)), os.Remove(planPath(o.StateDir))); err != nil {
			return err
		}
		// Only if empty: what the join made is gone; anything else stays.
		_ = os.Remove(filepath.Dir(recordPath(o.StateDir)))
		_ = os.Remove(o.StateDir)
		p.say("Operation %s has been rolled back: this host may join again", pl.OperationID)
	}
	return nil
}

// reconnect loads the pending join and connects to its cluster; the
// record is returned even when the cluster does not answer.
func reconnect(ctx context.Context, o Options) (*record, *clusterservice.Client, error) {
	rec, err := loadRecord(o.StateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w: no join in progress on this host", plan.ErrNoPlan)
	}
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := rec.connect(ctx, o)
	if err != nil {
		return rec, nil, err
	}
	return rec, c, nil
}
