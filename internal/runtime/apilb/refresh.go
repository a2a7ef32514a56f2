package apilb

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
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
// once it serves again. client makes a client for each pass, so that a
// connection held by an API server that stopped answering is not reused.
func (b *Balancer) Refresh(ctx context.Context, client func() (dynamic.Interface, error), every time.Duration) {
	for {
		if dc, err := client(); err == nil {
			lctx, cancel := context.WithTimeout(ctx, every)
			if found, err := APIServers(lctx, dc); err == nil && len(found) > 0 {
				b.SetBackends(found)
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// ReadyzCheck is a Check: the API server at backend answers /readyz
// (which any authenticated client may read) to the client rc describes.
func ReadyzCheck(rc *rest.Config) func(ctx context.Context, backend string) error {
	return func(ctx context.Context, backend string) error {
		c := Uncached(rc)
		c.Host = "https://" + backend
		hc, err := rest.HTTPClientFor(c)
		if err != nil {
			return err
		}
		defer hc.CloseIdleConnections()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Host+"/readyz", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s/readyz: %s", c.Host, resp.Status)
		}
		return nil
	}
}

// Uncached copies rc into a config whose clients get transports of their
// own, never client-go's shared ones (a function-valued Proxy makes it
// skip its cache): each check or pass starts from fresh connections. The
// proxy it sets is none, as every component's.
func Uncached(rc *rest.Config) *rest.Config {
	c := rest.CopyConfig(rc)
	c.Proxy = func(*http.Request) (*url.URL, error) { return nil, nil }
	return c
}
