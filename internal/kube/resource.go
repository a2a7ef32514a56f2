package kube

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
)

// Resource is typed access to one kind of object in one namespace (or a
// cluster-scoped kind): T is the object's type, L its list's. The methods
// are the typed clients' with the same options; API errors come back as
// the API server sent them, so apierrors.IsNotFound and the like hold.
type Resource[T, L any] struct {
	gvk    schema.GroupVersionKind
	client dynamic.Interface
	ri     dynamic.ResourceInterface
}

func resource[T, L any](c *Client, gvk schema.GroupVersionKind, plural, ns string) Resource[T, L] {
	nri := c.dynamic.Resource(gvk.GroupVersion().WithResource(plural))
	var ri dynamic.ResourceInterface = nri
	if ns != "" {
		ri = nri.Namespace(ns)
	}
	return Resource[T, L]{gvk: gvk, client: c.dynamic, ri: ri}
}

// Get reads the named object.
func (r Resource[T, L]) Get(ctx context.Context, name string, o metav1.GetOptions) (*T, error) {
	return typed[T](r.ri.Get(ctx, name, o))
}

// List reads the objects o selects.
func (r Resource[T, L]) List(ctx context.Context, o metav1.ListOptions) (*L, error) {
	list, err := r.ri.List(ctx, o)
	if err != nil {
		return nil, err
	}
	return fromUnstructured[L](list.UnstructuredContent())
}

// Create creates obj.
func (r Resource[T, L]) Create(ctx context.Context, obj *T, o metav1.CreateOptions) (*T, error) {
	u, err := r.unstructured(obj)
	if err != nil {
		return nil, err
	}
	return typed[T](r.ri.Create(ctx, u, o))
}

// Update replaces obj.
func (r Resource[T, L]) Update(ctx context.Context, obj *T, o metav1.UpdateOptions) (*T, error) {
	u, err := r.unstructured(obj)
	if err != nil {
		return nil, err
	}
	return typed[T](r.ri.Update(ctx, u, o))
}

// Delete removes the named object.
func (r Resource[T, L]) Delete(ctx context.Context, name string, o metav1.DeleteOptions) error {
	return r.ri.Delete(ctx, name, o)
}

// Patch applies data, a patch of type pt, to the named object.
func (r Resource[T, L]) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, o metav1.PatchOptions) (*T, error) {
	return typed[T](r.ri.Patch(ctx, name, pt, data, o))
}

// Watch streams the changes to the objects o selects, each event's object
// a *T. Error events keep the API server's Status, as informers expect.
func (r Resource[T, L]) Watch(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	w, err := r.ri.Watch(ctx, o)
	if err != nil {
		return nil, err
	}
	return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
		u, ok := e.Object.(*unstructured.Unstructured)
		if !ok || e.Type == watch.Error {
			return e, true
		}
		obj, err := fromUnstructured[T](u.Object)
		if err != nil {
			return watch.Event{Type: watch.Error, Object: &metav1.Status{Status: metav1.StatusFailure,
				Message: fmt.Sprintf("decoding %s: %v", r.gvk.Kind, err)}}, true
		}
		e.Object = any(obj).(runtime.Object)
		return e, true
	}), nil
}

// ListWatcher lists and watches the objects for an informer whose object
// type is *T. It tells the informer when the client cannot stream the
// initial list (client-go's fake), as client-go's own informers do.
func (r Resource[T, L]) ListWatcher() cache.ListerWatcher {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			list, err := r.List(ctx, o)
			if err != nil {
				return nil, err
			}
			return any(list).(runtime.Object), nil
		},
		WatchFuncWithContext: r.Watch,
	}
	return cache.ToListWatcherWithWatchListSemantics(lw, r.client)
}

// unstructured converts obj for the dynamic client, with the apiVersion
// and kind that typed objects usually leave empty.
func (r Resource[T, L]) unstructured(obj *T) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", r.gvk.Kind, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(r.gvk)
	return u, nil
}

func typed[T any](u *unstructured.Unstructured, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return fromUnstructured[T](u.Object)
}

func fromUnstructured[T any](m map[string]any) (*T, error) {
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, out); err != nil {
		return nil, fmt.Errorf("decoding %T: %w", out, err)
	}
	return out, nil
}
