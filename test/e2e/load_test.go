//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/opengravity/gravity/internal/runtime/config"
)

// probeCount counts one stream of requests.
type probeCount struct {
	total, failed int
	firstFailures []string
}

func (p *probeCount) add(err error, out string) {
	p.total++
	if err != nil {
		p.failed++
		if len(p.firstFailures) < 5 {
			p.firstFailures = append(p.firstFailures, fmt.Sprintf("%s: %v %s", time.Now().UTC().Format("15:04:05.000"), err, out))
		}
	}
}

func (p *probeCount) String() string {
	return fmt.Sprintf("%d failed of %d %v", p.failed, p.total, p.firstFailures)
}

// webLoad is the service a rolling upgrade must keep serving: two
// replicas on different nodes behind a Service, with a disruption budget
// that keeps one available, a readiness probe, and a preStop pause so that
// a pod going away stops getting traffic before it stops serving.
const webLoad = `{"apiVersion":"v1","kind":"List","items":[
{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"replicas":2,
 "selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{
  "terminationGracePeriodSeconds":15,
  "affinity":{"podAntiAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":[{"topologyKey":"kubernetes.io/hostname","labelSelector":{"matchLabels":{"app":"web"}}}]}},
  "containers":[{"name":"web","image":"registry.local:5000/web:1",
   "command":["sh","-c","mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"],
   "readinessProbe":{"httpGet":{"path":"/","port":8080},"periodSeconds":1},
   "lifecycle":{"preStop":{"exec":{"command":["sleep","5"]}}}}]}}}},
{"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"web"},"spec":{"minAvailable":1,"selector":{"matchLabels":{"app":"web"}}}},
{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"selector":{"app":"web"},"ports":[{"port":80,"targetPort":8080}]}}]}`

// startLoad deploys webLoad (its image pushed to masters) and queries it
// from worker from every 200 ms, and the API through the balancers of
// workers (by turns), until the returned stop is called, which reports
// both and, with check, fails the test on any failed request to the
// service. It returns the service's failed and total requests.
func startLoad(t testing.TB, c *haCluster, masters []*installHost, from *installHost, workers ...*installHost) (stop func(check bool) (failed, total int)) {
	tr := registryTransport(t, c.h.Path("/var/lib/gravity/secrets"))
	img := busyboxImage(t)
	for _, h := range masters {
		push(t, h.h.IP.String()+":5000/web:1", img, tr)
	}
	c.put(writeTemp(t, webLoad), "/root/web.json")
	c.mustRun("kubectl", "apply", "-f", "/root/web.json")
	waitUntil(t, "the web Deployment", 2*time.Minute, func() bool {
		out, _ := c.run("kubectl", "get", "deployment", "web", "-o", "jsonpath={.status.availableReplicas}")
		return out == "2"
	})
	svc := c.mustRun("kubectl", "get", "service", "web", "-o", "jsonpath={.spec.clusterIP}")
	// Test hosts have no default route, so the kernel refuses a service
	// address before kube-proxy's rules could rewrite it: route the
	// service network onto the host's link, as a default route would.
	from.mustRun("ip", "route", "replace", config.DefaultServiceCIDR, "dev", "eth0")
	// The Deployment is available before kube-proxy on the querying node
	// has the Service's endpoints: count from the first answer on.
	query := func() (string, error) { return from.run("curl", "-sS", "-m", "3", "http://"+svc+"/") }
	waitUntil(t, "the web Service's first answer on "+from.h.IP.String(), time.Minute, func() bool {
		_, err := query()
		return err == nil
	})
	ctx, cancel := context.WithCancel(c.ctx)
	var wg sync.WaitGroup
	var web probeCount
	if len(workers) == 0 {
		workers = []*installHost{from}
	}
	api := make([]probeCount, len(workers))
	loop := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				f()
				time.Sleep(200 * time.Millisecond)
			}
		}()
	}
	loop(func() {
		out, err := query()
		if ctx.Err() == nil {
			web.add(err, out)
		}
	})
	turn := 0
	loop(func() {
		i := turn % len(workers)
		turn++
		h := workers[i]
		out, err := h.run("kubectl", "--kubeconfig=/var/lib/gravity/secrets/kubeconfig/kubelet.conf", "--request-timeout=3s",
			"get", "node", h.h.IP.String(), "-o", "name")
		if ctx.Err() == nil {
			api[i].add(err, out)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() }) // a test that fails before stop
	return func(check bool) (int, int) {
		cancel()
		wg.Wait()
		t.Logf("requests to the web Service from %s during the upgrade: %s", from.h.IP, &web)
		for i, h := range workers {
			t.Logf("API requests through the balancer of %s: %s", h.h.IP, &api[i])
		}
		if check && (web.total == 0 || web.failed > 0) {
			t.Errorf("the web Service did not answer throughout the upgrade: %s", &web)
		}
		return web.failed, web.total
	}
}
