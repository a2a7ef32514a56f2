package hook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opengravity/gravity/internal/kube"
)

// A hook runs as a service account of its own run, bound to ClusterRole
// only while the hook runs: a standing, well-known account bound to
// cluster-admin would make anyone who may create a pod in its namespace
// cluster-admin. cluster-admin, because an arbitrary chart may create
// cluster-scoped objects; a Job that names its own service account runs
// with that one instead, and no account is made for it.
const (
	ClusterRole = "cluster-admin"
	// accountPrefix starts every run's account and binding name; 16 hex
	// digits (64 random bits) follow, so the name cannot be guessed ahead
	// of the run to squat on it.
	accountPrefix = "gravity-hook-"
	// LabelAccount marks a run's service account and binding (its value
	// is the account's name), so that leftovers of an interrupted run can
	// be found and revoked; AnnotationAccount names it on the run's Job.
	LabelAccount      = "gravitational.io/hook-account"
	AnnotationAccount = "gravitational.io/hook-account"
)

// account is the identity of one hook run.
type account struct{ ns, name string }

// revokeTimeout bounds revoking, which must run even once the caller's
// context is done.
const revokeTimeout = 30 * time.Second

// randomHex is n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// grant creates a run's service account in ns and binds it to ClusterRole.
// On error nothing is left.
func grant(ctx context.Context, cs *kube.Client, s Spec, ns string) (account, error) {
	a := account{ns: ns, name: accountPrefix + randomHex(8)}
	labels := s.labels()
	labels[LabelAccount] = a.name
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: a.name, Namespace: ns, Labels: labels}}
	if _, err := cs.ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		return account{}, fmt.Errorf("hook %s: creating its service account: %w", s.Hook, err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: a.name, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: ClusterRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: a.name, Namespace: ns}},
	}
	if _, err := cs.ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		return account{}, errors.Join(fmt.Errorf("hook %s: binding its service account: %w", s.Hook, err), revoke(ctx, cs, a))
	}
	return a, nil
}

// revoke deletes a run's binding, then its account; what is already gone
// is not an error. It runs on a context of its own: a hook that ended
// must lose its rights even when the caller was cancelled at that moment.
func revoke(ctx context.Context, cs *kube.Client, a account) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeTimeout)
	defer cancel()
	errB := cs.ClusterRoleBindings().Delete(ctx, a.name, metav1.DeleteOptions{})
	errA := cs.ServiceAccounts(a.ns).Delete(ctx, a.name, metav1.DeleteOptions{})
	if err := errors.Join(ignoreNotFound(errB), ignoreNotFound(errA)); err != nil {
		return fmt.Errorf("revoking hook account %s/%s: %w", a.ns, a.name, err)
	}
	return nil
}

// accountOf is the run account a Job (made by JobObject, maybe by an
// earlier process) runs as, if any.
func accountOf(j *batchv1.Job) (account, bool) {
	name := j.Annotations[AnnotationAccount]
	if !strings.HasPrefix(name, accountPrefix) || j.Spec.Template.Spec.ServiceAccountName != name {
		return account{}, false
	}
	return account{ns: j.Namespace, name: name}, true
}

// RevokeAll revokes every hook account of an operation that is still
// there: a run interrupted before its hook ended, then rolled back rather
// than resumed, leaves one.
func RevokeAll(ctx context.Context, cs *kube.Client, operationID string) error {
	sel := metav1.FormatLabelSelector(&metav1.LabelSelector{
		MatchLabels:      map[string]string{LabelOperation: operationID},
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: LabelAccount, Operator: metav1.LabelSelectorOpExists}},
	})
	left := map[account]bool{}
	crbs, err := cs.ClusterRoleBindings().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return fmt.Errorf("listing hook accounts' bindings: %w", err)
	}
	for _, crb := range crbs.Items {
		for _, sub := range crb.Subjects {
			if sub.Kind == rbacv1.ServiceAccountKind && sub.Name == crb.Name {
				left[account{ns: sub.Namespace, name: sub.Name}] = true
			}
		}
	}
	sas, err := cs.ServiceAccounts(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return fmt.Errorf("listing hook accounts: %w", err)
	}
	for _, sa := range sas.Items {
		left[account{ns: sa.Namespace, name: sa.Name}] = true
	}
	var errs []error
	for a := range left {
		errs = append(errs, revoke(ctx, cs, a))
	}
	return errors.Join(errs...)
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
