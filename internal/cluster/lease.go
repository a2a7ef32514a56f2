package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var leases = schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}

// LeaseName is the Lease held while an operation is admitted or started:
// the checks (duplicates, the operation lock, subnets, etcd's quorum) and
// the records they lead to are one step across every master and every
// gravity process, not only within one.
const LeaseName = "gravity-operations"

// LeaseDuration bounds how long a holder that died keeps the others
// waiting.
const LeaseDuration = 30 * time.Second

// ErrLeaseBusy: another holder kept the operations lease past the wait.
var ErrLeaseBusy = errors.New("another operation is being admitted or started")

// Lease is one holder of the cluster-wide operations lease.
type Lease struct {
	Clients Clients
	Holder  string // "<node>/<process id>": who holds it, for the others' errors
	Now     func() time.Time
	Log     *slog.Logger
}

// With runs fn holding the lease, waiting up to a minute while someone
// else holds it.
func (l Lease) With(ctx context.Context, fn func() error) error {
	deadline := l.now().Add(time.Minute)
	for {
		ok, err := l.Acquire(ctx)
		if err != nil {
			return err
		}
		if ok {
			break
		}
		if l.now().After(deadline) {
			return fmt.Errorf("%w (lease %s/%s)", ErrLeaseBusy, Namespace, LeaseName)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	defer l.Release(context.WithoutCancel(ctx))
	return fn()
}

func (l Lease) now() time.Time {
	if l.Now == nil {
		return time.Now()
	}
	return l.Now()
}

func leaseObject(holder string, now time.Time, rv string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
		"metadata": map[string]any{"name": LeaseName, "namespace": Namespace},
		"spec": map[string]any{"holderIdentity": holder, "leaseDurationSeconds": int64(LeaseDuration / time.Second),
			"renewTime": now.UTC().Format("2006-01-02T15:04:05.000000Z07:00")},
	}}
	if rv != "" {
		u.SetResourceVersion(rv)
	}
	return u
}

// Acquire takes the lease when it is free, released, or expired.
func (l Lease) Acquire(ctx context.Context) (bool, error) {
	client := l.Clients.Dynamic.Resource(leases).Namespace(Namespace)
	now := l.now()
	cur, err := client.Get(ctx, LeaseName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = client.Create(ctx, leaseObject(l.Holder, now, ""), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return false, nil
		}
		return err == nil, err
	}
	if err != nil {
		return false, fmt.Errorf("reading lease %s: %w", LeaseName, err)
	}
	who, _, _ := unstructured.NestedString(cur.Object, "spec", "holderIdentity")
	renewed, _, _ := unstructured.NestedString(cur.Object, "spec", "renewTime")
	t, perr := time.Parse("2006-01-02T15:04:05.000000Z07:00", renewed)
	if who != "" && who != l.Holder && perr == nil && now.Sub(t) < LeaseDuration {
		return false, nil
	}
	_, err = client.Update(ctx, leaseObject(l.Holder, now, cur.GetResourceVersion()), metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return false, nil
	}
	return err == nil, err
}

// Release frees the lease if this holder still holds it.
func (l Lease) Release(ctx context.Context) {
	client := l.Clients.Dynamic.Resource(leases).Namespace(Namespace)
	cur, err := client.Get(ctx, LeaseName, metav1.GetOptions{})
	if err != nil {
		return
	}
	if who, _, _ := unstructured.NestedString(cur.Object, "spec", "holderIdentity"); who != l.Holder {
		return
	}
	_, err = client.Update(ctx, leaseObject("", l.now(), cur.GetResourceVersion()), metav1.UpdateOptions{})
	if err != nil && l.Log != nil {
		l.Log.Warn("releasing the operations lease", "error", err.Error())
	}
}
