// Package cluster keeps a cluster's own state in the cluster, so that any
// master can serve it: the cluster record (name, application, state) and
// every operation with its plan are custom resources, the join token a
// Secret. Before the control plane is up an operation's plan lives on the
// installer's disk; Store moves it in as soon as the cluster can hold it.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/opengravity/gravity/internal/kube"
	"github.com/opengravity/gravity/internal/plan"
)

// The API group of gravity's resources.
const (
	Group   = "gravity.opengravity.io"
	Version = "v1"
	// Namespace holds the token Secret.
	Namespace  = "kube-system"
	tokenName  = "gravity-join-token"
	recordName = "cluster"
)

var (
	OperationsResource = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "operations"}
	ClustersResource   = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "clusters"}
	crdResource        = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

// Info is the cluster record.
type Info struct {
	Name       string    `json:"name"`
	State      string    `json:"state"` // "installing", "active"
	App        string    `json:"app"`
	AppVersion string    `json:"appVersion"`
	Provider   string    `json:"provider"`
	Created    time.Time `json:"created"`
}

// Clients are the clients gravity talks to its cluster with: Kube for
// Kubernetes' own resources, Dynamic (the same connection) for gravity's.
// Kube is the kube package's, not client-go's clientset: any typed client
// of client-go links every API group's types, clients and apply
// configurations, 17 MB of the 46 MB node binary.
type Clients struct {
	Kube    *kube.Client
	Dynamic dynamic.Interface
}

// NewClients connects to the cluster rc describes.
func NewClients(rc *rest.Config) (Clients, error) {
	k, err := kube.New(rc)
	if err != nil {
		return Clients{}, err
	}
	return Clients{Kube: k, Dynamic: k.Dynamic()}, nil
}

// crdKinds are gravity's custom resources: the cluster record and its
// operations, and the cluster API's users, roles, settings and audit log.
var crdKinds = []struct{ singular, kind string }{{"operation", "Operation"}, {"cluster", "Cluster"},
	{"user", "User"}, {"role", "Role"}, {"authgateway", "AuthGateway"}, {"authpreference", "AuthPreference"},
	{"auditevent", "AuditEvent"}}

// EnsureCRDs creates gravity's resource definitions and waits for the API
// server to serve them.
func EnsureCRDs(ctx context.Context, c Clients) error {
	for _, kind := range crdKinds {
		crd := crdObject(kind.singular, kind.kind)
		_, err := c.Dynamic.Resource(crdResource).Create(ctx, crd, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s: %w", crd.GetName(), err)
		}
		if err := waitEstablished(ctx, c, crd.GetName()); err != nil {
			return err
		}
	}
	return nil
}

// DeleteCRDs removes the definitions and with them every record.
func DeleteCRDs(ctx context.Context, c Clients) error {
	var errs []error
	for _, kind := range crdKinds {
		err := c.Dynamic.Resource(crdResource).Delete(ctx, kind.singular+"s."+Group, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func crdObject(singular, kind string) *unstructured.Unstructured {
	plural := singular + "s"
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": plural + "." + Group},
		"spec": map[string]any{
			"group": Group,
			"scope": "Cluster",
			"names": map[string]any{"plural": plural, "singular": singular, "kind": kind},
			"versions": []any{map[string]any{
				"name": Version, "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object",
					"properties": map[string]any{"spec": map[string]any{
						"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
				}},
			}},
		},
	}}
}

func waitEstablished(ctx context.Context, c Clients, name string) error {
	for {
		obj, err := c.Dynamic.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
		if err == nil && established(obj) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func established(obj *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// put creates or replaces the named object of resource with spec.
func put(ctx context.Context, c Clients, res schema.GroupVersionResource, kind, name string, spec any) error {
	raw, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": Group + "/" + Version, "kind": kind,
		"metadata": map[string]any{"name": name}, "spec": m}}
	client := c.Dynamic.Resource(res)
	old, err := client.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = client.Create(ctx, obj, metav1.CreateOptions{})
	case err == nil:
		obj.SetResourceVersion(old.GetResourceVersion())
		_, err = client.Update(ctx, obj, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("saving %s %s: %w", kind, name, err)
	}
	return nil
}

func spec(obj *unstructured.Unstructured, out any) error {
	m, _, err := unstructured.NestedMap(obj.Object, "spec")
	if err != nil {
		return err
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

// SaveInfo writes the cluster record.
func SaveInfo(ctx context.Context, c Clients, info Info) error {
	return put(ctx, c, ClustersResource, "Cluster", recordName, info)
}

// LoadInfo reads the cluster record.
func LoadInfo(ctx context.Context, c Clients) (Info, error) {
	var info Info
	obj, err := c.Dynamic.Resource(ClustersResource).Get(ctx, recordName, metav1.GetOptions{})
	if err != nil {
		return info, fmt.Errorf("reading the cluster record: %w", err)
	}
	return info, spec(obj, &info)
}

// SaveOperation writes an operation with its plan.
func SaveOperation(ctx context.Context, c Clients, p *plan.Plan) error {
	return put(ctx, c, OperationsResource, "Operation", p.OperationID, p)
}

// Operation reads operation id; plan.ErrNoPlan when the cluster has none.
func Operation(ctx context.Context, c Clients, id string) (*plan.Plan, error) {
	obj, err := c.Dynamic.Resource(OperationsResource).Get(ctx, id, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%w: operation %s", plan.ErrNoPlan, id)
	}
	if err != nil {
		return nil, fmt.Errorf("reading operation %s: %w", id, err)
	}
	var p plan.Plan
	if err := spec(obj, &p); err != nil {
		return nil, fmt.Errorf("operation %s: %w", id, err)
	}
	return &p, nil
}

// Operations lists every operation, newest first.
func Operations(ctx context.Context, c Clients) ([]*plan.Plan, error) {
	list, err := c.Dynamic.Resource(OperationsResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing operations: %w", err)
	}
	var out []*plan.Plan
	for i := range list.Items {
		var p plan.Plan
		if err := spec(&list.Items[i], &p); err != nil {
			return nil, fmt.Errorf("operation %s: %w", list.Items[i].GetName(), err)
		}
		out = append(out, &p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// JoinToken admits nodes to the cluster (and install agents to their
// installer). It may expire: a token handed out for one expansion need not
// admit nodes forever.
type JoinToken struct {
	Token   string
	Expires time.Time // zero: never
}

// Expired says whether the token no longer admits anyone at now.
func (t JoinToken) Expired(now time.Time) bool { return !t.Expires.IsZero() && !now.Before(t.Expires) }

// SaveToken stores the join token, and its expiry, as a Secret.
func SaveToken(ctx context.Context, c Clients, t JoinToken) error {
	data := map[string]string{"token": t.Token}
	if !t.Expires.IsZero() {
		data["expires"] = t.Expires.UTC().Format(time.RFC3339)
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: tokenName, Namespace: Namespace}, StringData: data}
	_, err := c.Kube.Secrets(Namespace).Create(ctx, s, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = c.Kube.Secrets(Namespace).Update(ctx, s, metav1.UpdateOptions{})
	}
	return err
}

// Token reads the join token.
func Token(ctx context.Context, c Clients) (JoinToken, error) {
	s, err := c.Kube.Secrets(Namespace).Get(ctx, tokenName, metav1.GetOptions{})
	if err != nil {
		return JoinToken{}, err
	}
	t := JoinToken{Token: string(s.Data["token"])}
	if raw := string(s.Data["expires"]); raw != "" {
		if t.Expires, err = time.Parse(time.RFC3339, raw); err != nil {
			return JoinToken{}, fmt.Errorf("join token expiry %q: %w", raw, err)
		}
	}
	return t, nil
}

// DeleteToken removes the token Secret.
func DeleteToken(ctx context.Context, c Clients) error {
	err := c.Kube.Secrets(Namespace).Delete(ctx, tokenName, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// OperationStore keeps one operation's plan in the cluster only: an
// operation the cluster service runs itself (a shrink) has no node disk
// of its own.
type OperationStore struct {
	Clients Clients
	ID      string
}

func (s OperationStore) Load(ctx context.Context) (*plan.Plan, error) {
	return Operation(ctx, s.Clients, s.ID)
}

func (s OperationStore) Save(ctx context.Context, p *plan.Plan) error {
	return SaveOperation(ctx, s.Clients, p)
}

// profilesName is the ConfigMap of the application's node profiles, which
// a joining node's role and preflight checks come from.
const profilesName = "gravity-node-profiles"

// SaveProfiles records the application's node profiles (the manifest's
// nodeProfiles, as YAML).
func SaveProfiles(ctx context.Context, c Clients, profiles []byte) error {
	return putRecord(ctx, c, profilesName, "profiles.yaml", profiles)
}

// Profiles reads what SaveProfiles recorded; nil when nothing was.
func Profiles(ctx context.Context, c Clients) ([]byte, error) {
	return record(ctx, c, profilesName, "profiles.yaml")
}

// putRecord creates or replaces ConfigMap name in Namespace, holding data
// under key.
func putRecord(ctx context.Context, c Clients, name, key string, data []byte) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: Namespace},
		Data: map[string]string{key: string(data)}}
	_, err := c.Kube.ConfigMaps(Namespace).Create(ctx, cm, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = c.Kube.ConfigMaps(Namespace).Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("saving %s: %w", name, err)
	}
	return nil
}

// record reads what putRecord saved; nil when nothing was.
func record(ctx context.Context, c Clients, name, key string) ([]byte, error) {
	cm, err := c.Kube.ConfigMaps(Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return []byte(cm.Data[key]), nil
}
