package clusterservice

import (
	"context"
	"errors"
	"fmt"

	"github.com/opengravity/gravity/internal/cluster"
)

// lease is this service's hold on the cluster-wide operations lease.
func (s *Service) lease(holder string) cluster.Lease {
	return cluster.Lease{Clients: s.cfg.Clients, Holder: holder, Now: s.cfg.Now, Log: s.cfg.Log}
}

// withLease runs fn holding the operations lease, waiting (up to a
// minute) while another master or an upgrade holds it.
func (s *Service) withLease(ctx context.Context, fn func() error) error {
	err := s.lease(fmt.Sprintf("%s/%s", s.cfg.Self.Name, s.id)).With(ctx, fn)
	if errors.Is(err, cluster.ErrLeaseBusy) {
		return busyError{err}
	}
	return err
}
