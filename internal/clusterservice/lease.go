package clusterservice

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/opengravity/gravity/internal/cluster"
)

var leases = schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}

// leaseName is the Lease a master's service holds while it admits a node
// or removes one: the checks (duplicates, the operation lock, subnets,
// etcd's quorum) and the records they lead to are one step across every
// master, not only within one service.
const leaseName = "gravity-operations"

// leaseDuration bounds how long a service that died holding the lease
// keeps the others waiting.
const leaseDuration = 30 * time.Second

// withLease runs fn holding the cluster-wide operations lease, waiting
// (up to a minute) while another master holds it.
func (s *Service) withLease(ctx context.Context, fn func() error) error {
	holder := fmt.Sprintf("%s/%s", s.cfg.Self.Name, s.id)
	deadline := time.Now().Add(time.Minute)
	for {
		ok, err := s.acquire(ctx, holder)
		if err != nil {
			return err
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			return busyError{fmt.Errorf("another master is admitting or removing a node (lease %s/%s)", cluster.Namespace, leaseName)}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	defer s.release(context.WithoutCancel(ctx), holder)
	return fn()
}

func leaseObject(holder string, now time.Time, rv string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
		"metadata": map[string]any{"name": leaseName, "namespace": cluster.Namespace},
		"spec": map[string]any{"holderIdentity": holder, "leaseDurationSeconds": int64(leaseDuration / time.Second),
			"renewTime": now.UTC().Format("2006-01-02T15:04:05.000000Z07:00")},
	}}
	if rv != "" {
		u.SetResourceVersion(rv)
	}
	return u
}

// acquire takes the lease when it is free, released, or expired.
func (s *Service) acquire(ctx context.Context, holder string) (bool, error) {
	client := s.cfg.Clients.Dynamic.Resource(leases).Namespace(cluster.Namespace)
	now := s.cfg.Now()
	cur, err := client.Get(ctx, leaseName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = client.Create(ctx, leaseObject(holder, now, ""), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return false, nil
		}
		return err == nil, err
	}
	if err != nil {
		return false, fmt.Errorf("reading lease %s: %w", leaseName, err)
	}
	who, _, _ := unstructured.NestedString(cur.Object, "spec", "holderIdentity")
	renewed, _, _ := unstructured.NestedString(cur.Object, "spec", "renewTime")
	t, perr := time.Parse("2006-01-02T15:04:05.000000Z07:00", renewed)
	if who != "" && who != holder && perr == nil && now.Sub(t) < leaseDuration {
		return false, nil
	}
	_, err = client.Update(ctx, leaseObject(holder, now, cur.GetResourceVersion()), metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return false, nil
	}
	return err == nil, err
}

// release frees the lease if this service still holds it.
func (s *Service) release(ctx context.Context, holder string) {
	client := s.cfg.Clients.Dynamic.Resource(leases).Namespace(cluster.Namespace)
	cur, err := client.Get(ctx, leaseName, metav1.GetOptions{})
	if err != nil {
		return
	}
	if who, _, _ := unstructured.NestedString(cur.Object, "spec", "holderIdentity"); who != holder {
		return
	}
	_, err = client.Update(ctx, leaseObject("", s.cfg.Now(), cur.GetResourceVersion()), metav1.UpdateOptions{})
	if err != nil {
		s.cfg.Log.Warn("releasing the operations lease", "error", err.Error())
	}
}
