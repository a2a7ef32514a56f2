package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/opengravity/gravity/internal/resources"
)

// The cluster API's resources are kept in two places by what they hold:
// what any admin may read (users without their passwords, roles, the auth
// gateway and preference) as custom resources; what is secret (API
// tokens, connectors with their client secrets, the web certificate,
// password hashes, invitations and sessions) as Secrets in Namespace,
// which only cluster admins read. Secrets named after a secret value
// (tokens, invitations, sessions) are named by its hash, so that a lookup
// is one read and a listing shows no value.

// ErrNotFound and ErrExists are what a missing or a duplicate resource
// come back as.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

const (
	labelKind = Group + "/kind"
	labelUser = Group + "/user"
	// resourceKey is the Secret key of a stored resource.
	resourceKey = "resource"
)

// storage says where a kind lives: a custom resource, or a Secret.
func storage(kind string) (gvr schema.GroupVersionResource, secret bool) {
	switch kind {
	case resources.KindUser, resources.KindRole, resources.KindAuthGateway, resources.KindAuthPreference:
		return schema.GroupVersionResource{Group: Group, Version: Version, Resource: kind + "s"}, false
	}
	return schema.GroupVersionResource{}, true
}

var nameRE = regexp.MustCompile(`[^a-z0-9.-]+`)

// ObjectName is the Kubernetes name of a resource named name: readable
// where it can be, unique always ("agent@example.com" is
// "agent-example.com-6f1c2a9b").
func ObjectName(name string) string {
	clean := strings.Trim(nameRE.ReplaceAllString(strings.ToLower(name), "-"), "-.")
	if clean == name && len(clean) <= 63 {
		return clean
	}
	sum := sha256.Sum256([]byte(name))
	if len(clean) > 40 {
		clean = clean[:40]
	}
	return strings.Trim(clean, "-.") + "-" + hex.EncodeToString(sum[:4])
}

// secretName is a secret-kind resource's Secret: a token by its value's
// hash, anything else by its name.
func secretName(kind, name string) string {
	if kind == resources.KindToken {
		sum := sha256.Sum256([]byte(name))
		return "gravity-token-" + hex.EncodeToString(sum[:20])
	}
	return "gravity-" + kind + "-" + ObjectName(name)
}

// PutResource stores r; create refuses one that exists (ErrExists). A
// user's password is not stored with it: SetPassword keeps its hash.
func PutResource(ctx context.Context, c Clients, r resources.Resource, create bool) error {
	if u, ok := r.Spec.(*resources.UserSpec); ok && u.Password != "" {
		cp := *u
		cp.Password = ""
		r.Spec = &cp
	}
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	gvr, secret := storage(r.Kind)
	if secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secretName(r.Kind, r.Metadata.Name), Namespace: Namespace,
			Labels: map[string]string{labelKind: r.Kind}}, Data: map[string][]byte{resourceKey: data}}
		if t, ok := r.Spec.(*resources.TokenSpec); ok {
			s.Labels[labelUser] = ObjectName(t.User)
		}
		return putSecret(ctx, c, s, create)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": Group + "/" + Version,
		"kind": crdKind(r.Kind), "metadata": map[string]any{"name": ObjectName(r.Metadata.Name)}, "spec": m}}
	client := c.Dynamic.Resource(gvr)
	_, err = client.Create(ctx, obj, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		if create {
			return fmt.Errorf("%s %q: %w", r.Kind, r.Metadata.Name, ErrExists)
		}
		old, getErr := client.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if getErr != nil {
			return fmt.Errorf("saving %s %q: %w", r.Kind, r.Metadata.Name, getErr)
		}
		obj.SetResourceVersion(old.GetResourceVersion())
		_, err = client.Update(ctx, obj, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("saving %s %q: %w", r.Kind, r.Metadata.Name, err)
	}
	return nil
}

func crdKind(kind string) string {
	for _, k := range crdKinds {
		if k.singular == kind {
			return k.kind
		}
	}
	return kind
}

func putSecret(ctx context.Context, c Clients, s *corev1.Secret, create bool) error {
	secrets := c.Kube.Secrets(Namespace)
	_, err := secrets.Create(ctx, s, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		if create {
			return ErrExists
		}
		_, err = secrets.Update(ctx, s, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("saving secret %s: %w", s.Name, err)
	}
	return nil
}

// GetResource reads one resource (ErrNotFound when there is none).
func GetResource(ctx context.Context, c Clients, kind, name string) (resources.Resource, error) {
	r, _, err := getResource(ctx, c, kind, name)
	return r, err
}

// getResource is GetResource with the unique ID of the record (a custom
// resource's; "" for a Secret's).
func getResource(ctx context.Context, c Clients, kind, name string) (resources.Resource, string, error) {
	var r resources.Resource
	var uid string
	gvr, secret := storage(kind)
	var data []byte
	if secret {
		s, err := c.Kube.Secrets(Namespace).Get(ctx, secretName(kind, name), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return r, "", fmt.Errorf("%s %q: %w", kind, name, ErrNotFound)
		}
		if err != nil {
			return r, "", err
		}
		data = s.Data[resourceKey]
	} else {
		obj, err := c.Dynamic.Resource(gvr).Get(ctx, ObjectName(name), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return r, "", fmt.Errorf("%s %q: %w", kind, name, ErrNotFound)
		}
		if err != nil {
			return r, "", err
		}
		uid = string(obj.GetUID())
		if data, err = specJSON(obj); err != nil {
			return r, "", err
		}
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, "", fmt.Errorf("reading %s %q: %w", kind, name, err)
	}
	if r.Metadata.Name != name { // a hash or name collision, or a record edited by hand
		return r, "", fmt.Errorf("%s %q: %w", kind, name, ErrNotFound)
	}
	return r, uid, nil
}

func specJSON(obj *unstructured.Unstructured) ([]byte, error) {
	m, _, err := unstructured.NestedMap(obj.Object, "spec")
	if err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// ListResources lists a kind's resources sorted by name; user, when set,
// keeps only that user's (tokens).
func ListResources(ctx context.Context, c Clients, kind, user string) ([]resources.Resource, error) {
	var raws [][]byte
	gvr, secret := storage(kind)
	if secret {
		sel := map[string]string{labelKind: kind}
		if user != "" {
			sel[labelUser] = ObjectName(user)
		}
		list, err := c.Kube.Secrets(Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(sel).String()})
		if err != nil {
			return nil, fmt.Errorf("listing %ss: %w", kind, err)
		}
		for _, s := range list.Items {
			raws = append(raws, s.Data[resourceKey])
		}
	} else {
		list, err := c.Dynamic.Resource(gvr).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("listing %ss: %w", kind, err)
		}
		for i := range list.Items {
			data, err := specJSON(&list.Items[i])
			if err != nil {
				return nil, err
			}
			raws = append(raws, data)
		}
	}
	out := make([]resources.Resource, 0, len(raws))
	for _, data := range raws {
		var r resources.Resource
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("reading a %s: %w", kind, err)
		}
		if t, ok := r.Spec.(*resources.TokenSpec); ok && user != "" && t.User != user {
			continue
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b resources.Resource) int { return strings.Compare(a.Metadata.Name, b.Metadata.Name) })
	return out, nil
}

// DeleteResource removes one resource (ErrNotFound when there is none).
func DeleteResource(ctx context.Context, c Clients, kind, name string) error {
	if _, err := GetResource(ctx, c, kind, name); err != nil {
		return err
	}
	gvr, secret := storage(kind)
	var err error
	if secret {
		err = c.Kube.Secrets(Namespace).Delete(ctx, secretName(kind, name), metav1.DeleteOptions{})
	} else {
		err = c.Dynamic.Resource(gvr).Delete(ctx, ObjectName(name), metav1.DeleteOptions{})
	}
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s %q: %w", kind, name, ErrNotFound)
	}
	return err
}

// Credentials are a user's password hash and failed-login count.
type Credentials struct {
	PasswordHash string    `json:"passwordHash,omitempty"`
	Failures     int       `json:"failures,omitempty"`
	LockedUntil  time.Time `json:"lockedUntil,omitzero"`
	// OTPSecret is the user's one-time code key, once enrolled;
	// OTPLastStep the step of the last code accepted (each is good once).
	OTPSecret   string `json:"otpSecret,omitempty"`
	OTPLastStep int64  `json:"otpLastStep,omitempty"`
}

func credentialsName(user string) string { return "gravity-user-" + ObjectName(user) }

// LoadCredentials reads user's credentials (empty when there are none).
func LoadCredentials(ctx context.Context, c Clients, user string) (Credentials, error) {
	var cr Credentials
	s, err := c.Kube.Secrets(Namespace).Get(ctx, credentialsName(user), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return cr, nil
	}
	if err != nil {
		return cr, err
	}
	if err := json.Unmarshal(s.Data["credentials"], &cr); err != nil {
		return cr, fmt.Errorf("reading the credentials of %s: %w", user, err)
	}
	return cr, nil
}

// SaveCredentials writes user's credentials.
func SaveCredentials(ctx context.Context, c Clients, user string, cr Credentials) error {
	data, err := json.Marshal(cr)
	if err != nil {
		return err
	}
	return putSecret(ctx, c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: credentialsName(user), Namespace: Namespace,
		Labels: map[string]string{labelKind: "credentials", labelUser: ObjectName(user)}},
		Data: map[string][]byte{"credentials": data}}, false)
}

// Ticket kinds: an invitation to sign up, a password reset, a session.
const (
	TicketInvite  = "invite"
	TicketReset   = "reset"
	TicketSession = "session"
)

// Ticket is what an invitation, reset or session secret stands for. It
// is stored under the secret's hash, never the secret.
type Ticket struct {
	Kind      string    `json:"kind"`
	User      string    `json:"user"`
	Roles     []string  `json:"roles,omitempty"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
	CreatedBy string    `json:"createdBy,omitempty"`
	// OTPSecret is the one-time code key an invitation or reset enrols
	// when the cluster asks for a second factor.
	OTPSecret string `json:"otpSecret,omitempty"`
}

func ticketName(kind, hash string) string { return "gravity-" + kind + "-" + hash[:40] }

// PutTicket stores t under hash (identity.SecretHash of the secret).
func PutTicket(ctx context.Context, c Clients, hash string, t Ticket) error {
	data, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return putSecret(ctx, c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: ticketName(t.Kind, hash), Namespace: Namespace,
		Labels: map[string]string{labelKind: t.Kind, labelUser: ObjectName(t.User)}},
		Data: map[string][]byte{"ticket": data, "hash": []byte(hash)}}, true)
}

// GetTicket reads the ticket of kind stored under hash; an expired one
// is ErrNotFound (and deleted).
func GetTicket(ctx context.Context, c Clients, kind, hash string, now time.Time) (Ticket, error) {
	var t Ticket
	if len(hash) < 40 {
		return t, ErrNotFound
	}
	s, err := c.Kube.Secrets(Namespace).Get(ctx, ticketName(kind, hash), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return t, ErrNotFound
	}
	if err != nil {
		return t, err
	}
	if err := json.Unmarshal(s.Data["ticket"], &t); err != nil {
		return t, fmt.Errorf("reading a %s: %w", kind, err)
	}
	if string(s.Data["hash"]) != hash || t.Kind != kind {
		return Ticket{}, ErrNotFound
	}
	if !now.Before(t.Expires) {
		_ = DeleteTicket(ctx, c, kind, hash)
		return Ticket{}, ErrNotFound
	}
	return t, nil
}

// DeleteTicket removes one ticket; one already gone is no error.
func DeleteTicket(ctx context.Context, c Clients, kind, hash string) error {
	err := c.Kube.Secrets(Namespace).Delete(ctx, ticketName(kind, hash), metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// DeleteUserSecrets removes user's tickets of kinds (and "credentials",
// "token" when named).
func DeleteUserSecrets(ctx context.Context, c Clients, user string, kinds ...string) error {
	var errs []error
	for _, kind := range kinds {
		sel := labels.SelectorFromSet(map[string]string{labelKind: kind, labelUser: ObjectName(user)}).String()
		list, err := c.Kube.Secrets(Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, s := range list.Items {
			if err := c.Kube.Secrets(Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// AuditEvent is one entry of the audit log: who did what, when, from
// where.
type AuditEvent struct {
	Time    time.Time         `json:"time"`
	Code    string            `json:"code"`
	Event   string            `json:"event"`
	User    string            `json:"user"`
	From    string            `json:"from,omitempty"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

var auditResource = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "auditevents"}

// RecordEvent appends e to the audit log.
func RecordEvent(ctx context.Context, c Clients, e AuditEvent) error {
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		return err
	}
	name := fmt.Sprintf("%d-%s-%x", e.Time.UnixNano(), ObjectName(e.Event), suffix)
	return put(ctx, c, auditResource, "AuditEvent", name, e)
}

// Events reads the audit log, oldest first.
func Events(ctx context.Context, c Clients) ([]AuditEvent, error) {
	list, err := c.Dynamic.Resource(auditResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading the audit log: %w", err)
	}
	out := make([]AuditEvent, 0, len(list.Items))
	for i := range list.Items {
		var e AuditEvent
		if err := spec(&list.Items[i], &e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b AuditEvent) int { return a.Time.Compare(b.Time) })
	return out, nil
}
