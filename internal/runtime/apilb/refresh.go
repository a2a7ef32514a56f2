package apilb

import (
	"context"
	"net"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

var endpointSlices = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}

// APIServers lists the API servers the `kubernetes` service's
// EndpointSlices hold (ready endpoints only), as host:port.
func APIServers(ctx context.Context, dc dynamic.Interface) ([]string, error) {
	list, err := dc.Resource(endpointSlices).Namespace("default").List(ctx,
		metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=kubernetes"})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range list.Items {
		out = append(out, sliceBackends(s)...)
	}
	return out, nil
}

func sliceBackends(s unstructured.Unstructured) []string {
	port := int64(6443)
	ports, _, _ := unstructured.NestedSlice(s.Object, "ports")
	for _, p := range ports {
		if pm, ok := p.(map[string]any); ok {
			if v, ok := pm["port"].(int64); ok {
				port = v
			}
		}
	}
	eps, _, _ := unstructured.NestedSlice(s.Object, "endpoints")
	var out []string
	for _, e := range eps {
		em, ok := e.(map[string]any)
		if !ok {
			continue
		}
		if ready, found, _ := unstructured.NestedBool(em, "conditions", "ready"); found && !ready {
			continue
		}
		addrs, _, _ := unstructured.NestedStringSlice(em, "addresses")
		for _, a := range addrs {
			if net.ParseIP(a) != nil {
				out = append(out, net.JoinHostPort(a, strconv.FormatInt(port, 10)))
			}
		}
	}
	return out
}

// Refresh keeps the backends on the API servers the cluster lists: the
// configured ones only start it off. An API server drops out of the list
// when it stops renewing its lease (its master is down, or was removed and
// lost etcd); its connections are closed then, and it is back in the list
// once it serves again.
func (b *Balancer) Refresh(ctx context.Context, dc dynamic.Interface, every time.Duration) {
	for {
		if found, err := APIServers(ctx, dc); err == nil && len(found) > 0 {
			b.SetBackends(found)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
