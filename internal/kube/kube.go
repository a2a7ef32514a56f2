// Package kube is gravity's typed access to the few Kubernetes resources
// it uses. It is built on client-go's dynamic client, not its clientset:
// any of client-go's typed clients imports k8s.io/client-go/kubernetes/scheme,
// which links every API group's types, clients and apply configurations
// (17 MB of the node binary, which was 46 MB with them). Objects travel as unstructured JSON
// and are converted to and from the k8s.io/api types here.
package kube

import (
	"context"
	"fmt"
	"io"
	"net/http"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Client reaches one cluster's API.
type Client struct {
	dynamic dynamic.Interface
	// raw serves what is not an object, pod logs; nil in tests.
	raw rest.Interface
}

// New connects to the cluster rc describes.
func New(rc *rest.Config) (*Client, error) {
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, err
	}
	dc, err := dynamic.NewForConfigAndClient(rc, hc)
	if err != nil {
		return nil, err
	}
	raw, err := logsClient(rc)
	if err != nil {
		return nil, err
	}
	return &Client{dynamic: dc, raw: raw}, nil
}

// logsClient serves pod logs from the API server rc describes. A followed
// log lasts as long as its container, so rc's request timeout, meant for
// object calls, does not apply: the caller's context bounds the stream.
func logsClient(rc *rest.Config) (rest.Interface, error) {
	lc := dynamic.ConfigFor(rc) // JSON without a scheme
	lc.Timeout = 0
	hc, err := rest.HTTPClientFor(lc)
	if err != nil {
		return nil, err
	}
	return rest.UnversionedRESTClientForConfigAndClient(lc, hc)
}

// NewForDynamic makes a client over dc, such as client-go's fake, with pod
// logs from the API server logs describes (nil: none).
func NewForDynamic(dc dynamic.Interface, logs *rest.Config) (*Client, error) {
	c := &Client{dynamic: dc}
	if logs != nil {
		raw, err := logsClient(logs)
		if err != nil {
			return nil, err
		}
		c.raw = raw
	}
	return c, nil
}

// Dynamic is the client's untyped access, for gravity's own resources.
func (c *Client) Dynamic() dynamic.Interface { return c.dynamic }

// Nodes are the cluster's nodes.
func (c *Client) Nodes() Resource[corev1.Node, corev1.NodeList] {
	return resource[corev1.Node, corev1.NodeList](c, corev1.SchemeGroupVersion.WithKind("Node"), "nodes", "")
}

// Namespaces are the cluster's namespaces.
func (c *Client) Namespaces() Resource[corev1.Namespace, corev1.NamespaceList] {
	return resource[corev1.Namespace, corev1.NamespaceList](c, corev1.SchemeGroupVersion.WithKind("Namespace"), "namespaces", "")
}

// Pods are namespace ns's pods.
func (c *Client) Pods(ns string) Resource[corev1.Pod, corev1.PodList] {
	return resource[corev1.Pod, corev1.PodList](c, corev1.SchemeGroupVersion.WithKind("Pod"), "pods", ns)
}

// Secrets are namespace ns's secrets.
func (c *Client) Secrets(ns string) Resource[corev1.Secret, corev1.SecretList] {
	return resource[corev1.Secret, corev1.SecretList](c, corev1.SchemeGroupVersion.WithKind("Secret"), "secrets", ns)
}

// ConfigMaps are namespace ns's config maps.
func (c *Client) ConfigMaps(ns string) Resource[corev1.ConfigMap, corev1.ConfigMapList] {
	return resource[corev1.ConfigMap, corev1.ConfigMapList](c, corev1.SchemeGroupVersion.WithKind("ConfigMap"), "configmaps", ns)
}

// ServiceAccounts are namespace ns's service accounts.
func (c *Client) ServiceAccounts(ns string) Resource[corev1.ServiceAccount, corev1.ServiceAccountList] {
	return resource[corev1.ServiceAccount, corev1.ServiceAccountList](c, corev1.SchemeGroupVersion.WithKind("ServiceAccount"), "serviceaccounts", ns)
}

// Jobs are namespace ns's jobs.
func (c *Client) Jobs(ns string) Resource[batchv1.Job, batchv1.JobList] {
	return resource[batchv1.Job, batchv1.JobList](c, batchv1.SchemeGroupVersion.WithKind("Job"), "jobs", ns)
}

// Deployments are namespace ns's deployments.
func (c *Client) Deployments(ns string) Resource[appsv1.Deployment, appsv1.DeploymentList] {
	return resource[appsv1.Deployment, appsv1.DeploymentList](c, appsv1.SchemeGroupVersion.WithKind("Deployment"), "deployments", ns)
}

// ClusterRoleBindings are the cluster's role bindings.
func (c *Client) ClusterRoleBindings() Resource[rbacv1.ClusterRoleBinding, rbacv1.ClusterRoleBindingList] {
	return resource[rbacv1.ClusterRoleBinding, rbacv1.ClusterRoleBindingList](c, rbacv1.SchemeGroupVersion.WithKind("ClusterRoleBinding"), "clusterrolebindings", "")
}

// ClusterRoles reads and writes cluster roles.
func (c *Client) ClusterRoles() Resource[rbacv1.ClusterRole, rbacv1.ClusterRoleList] {
	return resource[rbacv1.ClusterRole, rbacv1.ClusterRoleList](c, rbacv1.SchemeGroupVersion.WithKind("ClusterRole"), "clusterroles", "")
}

// CertificateSigningRequests reads and writes CSRs (cluster-scoped).
func (c *Client) CertificateSigningRequests() Resource[certv1.CertificateSigningRequest, certv1.CertificateSigningRequestList] {
	return resource[certv1.CertificateSigningRequest, certv1.CertificateSigningRequestList](c,
		certv1.SchemeGroupVersion.WithKind("CertificateSigningRequest"), "certificatesigningrequests", "")
}

// UpdateApproval writes csr's Approved or Denied condition through the
// approval subresource, the only way to approve or deny one.
func (c *Client) UpdateApproval(ctx context.Context, csr *certv1.CertificateSigningRequest) (*certv1.CertificateSigningRequest, error) {
	r := c.CertificateSigningRequests()
	u, err := r.unstructured(csr)
	if err != nil {
		return nil, err
	}
	return typed[certv1.CertificateSigningRequest](r.ri.Update(ctx, u, metav1.UpdateOptions{}, "approval"))
}

// Evict asks the API to evict pod ns/name (POST pods/eviction): unlike a
// delete, it is refused (429 Too Many Requests) while a
// PodDisruptionBudget of the pod allows no disruption.
func (c *Client) Evict(ctx context.Context, ns, name string) error {
	ev := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "policy/v1", "kind": "Eviction",
		"metadata": map[string]any{"name": name, "namespace": ns}}}
	_, err := c.dynamic.Resource(corev1.SchemeGroupVersion.WithResource("pods")).Namespace(ns).
		Create(ctx, ev, metav1.CreateOptions{}, "eviction")
	return err
}

// PodLogs streams a container's log, as GET pods/log does: with follow it
// ends when the container does. The caller closes it.
func (c *Client) PodLogs(ctx context.Context, ns, pod, container string, follow bool) (io.ReadCloser, error) {
	if c.raw == nil {
		return nil, fmt.Errorf("logs of %s/%s: %w", pod, container, http.ErrNotSupported)
	}
	req := c.raw.Get().AbsPath("/api/v1/namespaces", ns, "pods", pod, "log").Param("container", container)
	if follow {
		req = req.Param("follow", "true")
	}
	return req.Stream(ctx)
}
