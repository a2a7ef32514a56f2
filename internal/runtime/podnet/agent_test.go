package podnet

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/opengravity/gravity/internal/kube"
	"github.com/opengravity/gravity/internal/kube/kubefake"
)

// memTable is a route table in memory; failing makes Replace fail for
// that destination. The lock lets a test read it while an agent runs.
type memTable struct {
	mu      sync.Mutex
	routes  []Route
	failing netip.Prefix
}

func (m *memTable) List() ([]Route, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.routes), nil
}

func (m *memTable) Replace(r Route) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.Dst == m.failing {
		return errors.New("no route to host")
	}
	m.routes = slices.DeleteFunc(m.routes, func(x Route) bool { return x.Dst == r.Dst })
	m.routes = append(m.routes, r)
	return nil
}

func (m *memTable) Delete(r Route) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.routes = slices.DeleteFunc(m.routes, func(x Route) bool { return x == r })
	return nil
}

func apiNode(name, ip, cidr string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}}}
	if cidr != "" {
		n.Annotations = map[string]string{AnnotationPodCIDR: cidr}
	}
	return n
}

// reconcile runs one pass against what client holds now.
func reconcile(t *testing.T, a *Agent) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	informer := a.nodeInformer()
	go informer.RunWithContext(ctx)
	cache.WaitForCacheSync(ctx.Done(), informer.HasSynced)
	lister := listersv1.NewNodeLister(informer.GetIndexer())
	return a.Reconcile(ctx, lister)
}

func TestReconcile(t *testing.T) {
	client, _ := kubefake.NewClient(apiNode("a", "10.0.0.2", ""), apiNode("b", "10.0.0.3", "10.244.2.0/24"))
	table := &memTable{routes: []Route{route("10.244.9.0/24", "10.0.0.9")}} // a node since removed
	a, err := NewAgent(Options{NodeName: "a", PodCIDR: netip.MustParsePrefix("10.244.1.0/24"), ClusterCIDR: cluster}, clientsOf(client), table)
	if err != nil {
		t.Fatal(err)
	}
	if err := reconcile(t, a); err != nil {
		t.Fatal(err)
	}
	self, err := client.Nodes().Get(context.Background(), "a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := self.Annotations[AnnotationPodCIDR]; got != "10.244.1.0/24" {
		t.Errorf("announced %q", got)
	}
	if want := []Route{route("10.244.2.0/24", "10.0.0.3")}; !reflect.DeepEqual(table.routes, want) {
		t.Errorf("routes %v, want %v", table.routes, want)
	}

	// One route failing does not keep the others out, and is reported.
	table.failing = netip.MustParsePrefix("10.244.3.0/24")
	if _, err := client.Nodes().Create(context.Background(), apiNode("c", "10.0.0.4", "10.244.3.0/24"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Nodes().Create(context.Background(), apiNode("d", "10.0.0.5", "10.244.4.0/24"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := reconcile(t, a); err == nil {
		t.Error("a failed route was not reported")
	}
	if want := []Route{route("10.244.2.0/24", "10.0.0.3"), route("10.244.4.0/24", "10.0.0.5")}; !reflect.DeepEqual(table.routes, want) {
		t.Errorf("routes %v, want %v", table.routes, want)
	}
}

// TestRunFollowsNodes: a running agent routes to a node that joins later,
// which it learns of through its watch, long before the next resync.
func TestRunFollowsNodes(t *testing.T) {
	client, _ := kubefake.NewClient(apiNode("a", "10.0.0.2", "10.244.1.0/24"), apiNode("b", "10.0.0.3", "10.244.2.0/24"))
	table := &memTable{}
	a, err := NewAgent(Options{NodeName: "a", PodCIDR: netip.MustParsePrefix("10.244.1.0/24"), ClusterCIDR: cluster,
		Resync: time.Hour}, clientsOf(client), table)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitRoutes(ctx, t, table, []Route{route("10.244.2.0/24", "10.0.0.3")})
	if _, err := client.Nodes().Create(ctx, apiNode("c", "10.0.0.4", "10.244.3.0/24"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRoutes(ctx, t, table, []Route{route("10.244.2.0/24", "10.0.0.3"), route("10.244.3.0/24", "10.0.0.4")})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

func waitRoutes(ctx context.Context, t *testing.T, table *memTable, want []Route) {
	t.Helper()
	for {
		have, _ := table.List()
		if reflect.DeepEqual(have, want) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("routes %v, want %v", have, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestReconcileBeforeRegistration(t *testing.T) {
	client, _ := kubefake.NewClient(apiNode("b", "10.0.0.3", "10.244.2.0/24"))
	a, err := NewAgent(Options{NodeName: "a", PodCIDR: netip.MustParsePrefix("10.244.1.0/24"), ClusterCIDR: cluster}, clientsOf(client), &memTable{})
	if err != nil {
		t.Fatal(err)
	}
	if err := reconcile(t, a); err == nil {
		t.Error("an unregistered node reconciled")
	}
}

func TestNewAgentChecksSubnets(t *testing.T) {
	for _, cidr := range []string{"10.9.0.0/24", "10.0.0.0/8"} {
		_, err := NewAgent(Options{NodeName: "a", PodCIDR: netip.MustParsePrefix(cidr), ClusterCIDR: cluster}, Clients{}, &memTable{})
		if err == nil {
			t.Errorf("pod subnet %s accepted in %s", cidr, cluster)
		}
	}
}

// clientsOf has the agent read and patch through the same fake cluster.
func clientsOf(c *kube.Client) Clients {
	return Clients{Reader: c, Node: c}
}
