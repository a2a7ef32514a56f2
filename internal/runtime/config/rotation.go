package config

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// KubeletCertRotationBinding lets every kubelet ask for a new client
// certificate for itself before its own expires (kubelet's
// rotateCertificates): the controller manager approves a node's CSR for
// its own name when the node may create CSRs of that kind, and signs it
// with the cluster CA. Kubernetes defines the role but binds it to no one.
func KubeletCertRotationBinding() *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
		ObjectMeta: metav1.ObjectMeta{Name: "gravity:kubelet-client-rotation"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole",
			Name: "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:nodes"}},
	}
}

// KubeletCertRotationManifest is that binding as YAML, for kubectl.
func KubeletCertRotationManifest() ([]byte, error) {
	return yaml.Marshal(KubeletCertRotationBinding())
}
