// Package kubefake makes kube.Clients over client-go's fake dynamic
// client, for tests. It is a package of its own so that the fake (and
// what it imports) stays out of the binaries.
package kubefake

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/rest"

	"github.com/opengravity/gravity/internal/kube"
)

// NewClient returns a client whose cluster holds objs, typed objects of
// the API groups kube serves, and the fake under it. It serves no pod logs.
func NewClient(objs ...runtime.Object) (*kube.Client, *dynamicfake.FakeDynamicClient) {
	return NewClientWithLogs(nil, objs...)
}

// NewClientWithLogs is NewClient with pod logs from logs, such as a test
// server's handler for /api/v1/namespaces/NS/pods/NAME/log.
func NewClientWithLogs(logs *rest.Config, objs ...runtime.Object) (*kube.Client, *dynamicfake.FakeDynamicClient) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, batchv1.AddToScheme, rbacv1.AddToScheme, appsv1.AddToScheme, certv1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	dc := dynamicfake.NewSimpleDynamicClient(scheme, objs...)
	c, err := kube.NewForDynamic(dc, logs)
	if err != nil {
		panic(err)
	}
	return c, dc
}
