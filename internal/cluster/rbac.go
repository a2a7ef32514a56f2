package cluster

import (
	rbacv1 "k8s.io/api/rbac/v1"
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
