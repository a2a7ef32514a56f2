package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/opengravity/gravity/internal/identity"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/resources"
)

// The access CAs: users' certificates (SSH and x509, for `tsh`) and
// nodes' SSH host certificates are signed by two CAs of their own, apart
// from the Kubernetes CA, so that a user's certificate never
// authenticates to Kubernetes itself, nor a host certificate as a user.
// Their keys live in admin-only Secrets, which only masters hold (etcd)
// and only the masters' services read.
const (
	AuthorityUsers = "users"
	AuthorityHosts = "hosts"
	// authorityValidity: the access CAs sign certificates of hours; ten
	// years as the cluster CA.
	authorityValidity = pki.DefaultCAValidity
)

func authorityName(kind string) string { return "gravity-ca-" + kind }

// Authority is the access CA of kind (AuthorityUsers, AuthorityHosts),
// made the first time it is asked for. Masters may ask at once: the first
// to create it wins and the others read what it made.
func Authority(ctx context.Context, c Clients, kind, clusterName string, now time.Time) (*pki.CA, error) {
	if kind != AuthorityUsers && kind != AuthorityHosts {
		return nil, fmt.Errorf("no access CA %q", kind)
	}
	secrets := c.Kube.Secrets(Namespace)
	name := authorityName(kind)
	s, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		ca, err := pki.NewCA(clusterName+"-"+kind+"-ca", authorityValidity, now)
		if err != nil {
			return nil, err
		}
		keyPEM, err := ca.KeyPEM()
		if err != nil {
			return nil, err
		}
		s = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: Namespace, Labels: map[string]string{labelKind: "authority"}},
			Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: ca.CertPEM(), corev1.TLSPrivateKeyKey: keyPEM}}
		if _, err = secrets.Create(ctx, s, metav1.CreateOptions{}); err == nil {
			return ca, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating the %s CA: %w", kind, err)
		}
		s, err = secrets.Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("reading the %s CA: %w", kind, err)
	}
	kp, err := pki.ParseKeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return nil, fmt.Errorf("the %s CA in secret %s: %w", kind, name, err)
	}
	return &pki.CA{KeyPair: *kp}, nil
}

// GetUser reads a user's record and its unique ID: a user removed and
// made again under the same name has a new one, so certificates that
// carry the old one are refused.
func GetUser(ctx context.Context, c Clients, name string) (resources.Resource, string, error) {
	return getResource(ctx, c, resources.KindUser, name)
}

// UserUID is the unique ID of user's record (GetUser).
func UserUID(ctx context.Context, c Clients, user string) (string, error) {
	_, uid, err := GetUser(ctx, c, user)
	return uid, err
}

// ListNodes is every node of the cluster, as `gravity status` shows them
// (without probing them).
func ListNodes(ctx context.Context, c Clients) ([]NodeStatus, error) {
	nodes, err := c.Kube.Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	out := make([]NodeStatus, 0, len(nodes.Items))
	for _, n := range nodes.Items {
		out = append(out, nodeStatus(n))
	}
	slices.SortFunc(out, func(a, b NodeStatus) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Recording is one interactive SSH session's output, as the access proxy
// saw it: Frames are what the node sent, each at its offset from Start.
type Recording struct {
	ID    string    `json:"id"`
	User  string    `json:"user"`
	Login string    `json:"login"`
	Node  string    `json:"node"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Truncated: the session wrote more than MaxRecording; the rest was
	// not kept.
	Truncated bool    `json:"truncated,omitempty"`
	Frames    []Frame `json:"frames,omitempty"`
}

// Frame is a piece of a session's output.
type Frame struct {
	// Offset is in milliseconds from the session's start.
	Offset int64  `json:"t"`
	Data   []byte `json:"d"`
}

// MaxRecording bounds the output kept of one session: a Secret holds at
// most 1 MiB, and the frames are base64 in JSON.
const MaxRecording = 512 << 10

const recordingKey = "recording"

func recordingName(id string) string { return "gravity-recording-" + ObjectName(id) }

// SaveRecording keeps r in the cluster.
func SaveRecording(ctx context.Context, c Clients, r Recording) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: recordingName(r.ID), Namespace: Namespace,
		Labels: map[string]string{labelKind: "recording", labelUser: ObjectName(r.User)}},
		Data: map[string][]byte{recordingKey: data}}
	return putSecret(ctx, c, s, false)
}

// GetRecording reads session id's recording.
func GetRecording(ctx context.Context, c Clients, id string) (Recording, error) {
	var r Recording
	s, err := c.Kube.Secrets(Namespace).Get(ctx, recordingName(id), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return r, fmt.Errorf("session %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("reading session %s: %w", id, err)
	}
	if err := json.Unmarshal(s.Data[recordingKey], &r); err != nil {
		return r, fmt.Errorf("session %s: %w", id, err)
	}
	return r, nil
}

// Recordings lists the recorded sessions, oldest first, without their
// output.
func Recordings(ctx context.Context, c Clients) ([]Recording, error) {
	list, err := c.Kube.Secrets(Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{labelKind: "recording"}).String()})
	if err != nil {
		return nil, fmt.Errorf("listing recorded sessions: %w", err)
	}
	out := make([]Recording, 0, len(list.Items))
	var errs []error
	for _, s := range list.Items {
		var r Recording
		if err := json.Unmarshal(s.Data[recordingKey], &r); err != nil {
			errs = append(errs, fmt.Errorf("secret %s: %w", s.Name, err))
			continue
		}
		r.Frames = nil
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Recording) int { return a.Start.Compare(b.Start) })
	return out, errors.Join(errs...)
}

// RoleSpecs reads the named roles (built-in ones from package identity);
// a role that was deleted grants nothing.
func RoleSpecs(ctx context.Context, c Clients, names []string) ([]resources.RoleSpec, error) {
	var out []resources.RoleSpec
	for _, name := range names {
		if spec, ok := identity.Builtin()[name]; ok {
			out = append(out, spec)
			continue
		}
		r, err := GetResource(ctx, c, resources.KindRole, name)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *r.Spec.(*resources.RoleSpec))
	}
	return out, nil
}
