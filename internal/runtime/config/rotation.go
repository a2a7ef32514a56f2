package config

import (
	"bytes"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/opengravity/gravity/internal/pki"
)

// Kubelets' certificates rotate through CertificateSigningRequests that
// the controller manager signs with the cluster CA:
//   - client certificates: the controller manager approves a node's
//     request for its own name when the node may create such requests
//     (KubeletCertRotationBinding; Kubernetes defines the role but binds it
//     to no one);
//   - serving certificates: Kubernetes approves none; the runtime's
//     approver (internal/runtime/csrapprove) does, for a node's own names
//     and addresses only, with the rights of CSRApproverRole.

// KubeletCertRotationBinding lets every kubelet ask for a new client
// certificate for itself before its own expires.
func KubeletCertRotationBinding() *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
		ObjectMeta: metav1.ObjectMeta{Name: "gravity:kubelet-client-rotation"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole",
			Name: "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:nodes"}},
	}
}

// CSRApproverRole is what the approver may do: read requests and nodes,
// and approve (or deny) for the kubelet-serving signer alone.
func CSRApproverRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "ClusterRole"),
		ObjectMeta: metav1.ObjectMeta{Name: pki.CSRApproverUser},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests/approval"}, Verbs: []string{"update"}},
			{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"signers"},
				ResourceNames: []string{"kubernetes.io/kubelet-serving"}, Verbs: []string{"approve"}},
			{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}},
		},
	}
}

// CSRApproverBinding grants CSRApproverRole to the approver's certificate.
func CSRApproverBinding() *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
		ObjectMeta: metav1.ObjectMeta{Name: pki.CSRApproverUser},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: pki.CSRApproverUser},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: pki.CSRApproverUser}},
	}
}

// ClusterServiceBinding makes the cluster service a cluster admin: it
// manages the cluster's nodes, operations, secrets and, through hooks,
// whatever an application installs, as Gravity's gravity-site did. Its key
// is on masters only, beside keys (the CAs) that are worth as much.
func ClusterServiceBinding() *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
		ObjectMeta: metav1.ObjectMeta{Name: pki.ClusterServiceUser},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: pki.ClusterServiceUser}},
	}
}

// CertRotationManifest is the three objects as YAML, for kubectl.
func CertRotationManifest() ([]byte, error) {
	var out bytes.Buffer
	for _, obj := range []any{KubeletCertRotationBinding(), CSRApproverRole(), CSRApproverBinding()} {
		data, err := yaml.Marshal(obj)
		if err != nil {
			return nil, err
		}
		out.WriteString("---\n")
		out.Write(data)
	}
	return out.Bytes(), nil
}
