package cluster

import (
	"context"
	"errors"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodeAgentRole lets a node read an operation by its id: its agent checks
// every phase a master asks it to run against the cluster's record
// (internal/nodeagent). Operations hold no secrets; listing them is not
// granted.
func NodeAgentRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: "gravity:node-agent"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{Group}, Resources: []string{OperationsResource.Resource}, Verbs: []string{"get"}},
		},
	}
}

// NodeAgentBinding grants NodeAgentRole to every node's credentials.
func NodeAgentBinding() *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: "gravity:node-agent"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "gravity:node-agent"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:nodes"}},
	}
}

// KubernetesGroups are the groups a role's kubernetes_groups may name and
// the cluster roles they are bound to, as Gravity bound them: a user is
// put in them when the cluster's access proxy acts for them.
var KubernetesGroups = map[string]string{"admin": "cluster-admin", "edit": "edit", "view": "view"}

// GroupBindings bind each of KubernetesGroups to its cluster role.
func GroupBindings() []*rbacv1.ClusterRoleBinding {
	var out []*rbacv1.ClusterRoleBinding
	for _, group := range []string{"admin", "edit", "view"} {
		out = append(out, &rbacv1.ClusterRoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: "gravity:group:" + group},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: KubernetesGroups[group]},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: group}},
		})
	}
	return out
}

// EnsureGroupBindings creates GroupBindings where they are missing.
func EnsureGroupBindings(ctx context.Context, c Clients) error {
	for _, crb := range GroupBindings() {
		if _, err := c.Kube.ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("cluster role binding %s: %w", crb.Name, err)
		}
	}
	return nil
}

// DeleteGroupBindings removes them.
func DeleteGroupBindings(ctx context.Context, c Clients) error {
	var errs []error
	for _, crb := range GroupBindings() {
		if err := c.Kube.ClusterRoleBindings().Delete(ctx, crb.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
