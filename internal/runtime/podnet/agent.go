package podnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/opengravity/gravity/internal/kube"
)

// Options configure an Agent.
type Options struct {
	NodeName    string
	PodCIDR     netip.Prefix // this node's pod subnet, announced on its Node
	ClusterCIDR netip.Prefix // the whole pod network
	// HealthAddr is a loopback host:port serving /healthz, which answers
	// 200 once the routes match the nodes in the API. Empty: no endpoint.
	HealthAddr string
	// Resync is how often the routes are checked against the kernel even
	// when no node changed (someone may have deleted one). Default 30 s.
	Resync time.Duration
	Log    *slog.Logger
	// OnMasters, when set, is told the masters' addresses (the nodes with
	// the control-plane role, sorted) whenever they change, so that what
	// on this node lists them (containerd's registry endpoints) follows
	// the cluster as masters join and leave.
	OnMasters func(masters []net.IP) error
}

// RouteTable is where the agent's routes live (Table, in the kernel).
type RouteTable interface {
	List() ([]Route, error)
	Replace(Route) error
	Delete(Route) error
}

// Agent keeps a node's routes to other nodes' pods in line with the API.
type Agent struct {
	o       Options
	clients Clients
	table   RouteTable
	healthy atomic.Bool
	masters string // last set told to OnMasters
}

// Clients are the agent's two identities. The node authorizer lets a
// kubelet read and patch only its own Node, so the agent watches all nodes
// as kube-proxy (whose bootstrap role may list them, and nothing more that
// the agent uses) and announces its subnet as the kubelet, which cannot
// touch any other node.
type Clients struct {
	Reader *kube.Client // lists and watches nodes
	Node   *kube.Client // patches this node
}

// NewAgent checks o and makes an agent that uses clients and table.
func NewAgent(o Options, clients Clients, table RouteTable) (*Agent, error) {
	if o.NodeName == "" {
		return nil, errors.New("pod network agent: no node name")
	}
	if !o.ClusterCIDR.IsValid() || !o.PodCIDR.IsValid() || o.PodCIDR.Bits() < o.ClusterCIDR.Bits() ||
		!o.ClusterCIDR.Contains(o.PodCIDR.Addr()) {
		return nil, fmt.Errorf("pod network agent: pod subnet %s is not inside the pod network %s", o.PodCIDR, o.ClusterCIDR)
	}
	if o.Resync <= 0 {
		o.Resync = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Agent{o: o, clients: clients, table: table}, nil
}

// Run serves health, watches nodes and reconciles the routes until ctx
// ends. Routes stay in place when it returns: pods keep talking while the
// agent restarts.
func (a *Agent) Run(ctx context.Context) error {
	if a.o.HealthAddr != "" {
		stop, err := a.serveHealth()
		if err != nil {
			return err
		}
		defer stop()
	}
	informer := a.nodeInformer()
	poke := make(chan struct{}, 1)
	notify := func(any) {
		select {
		case poke <- struct{}{}:
		default:
		}
	}
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: notify, DeleteFunc: notify, UpdateFunc: func(_, n any) { notify(n) },
	}); err != nil {
		return fmt.Errorf("pod network agent: %w", err)
	}
	go informer.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return ctx.Err()
	}
	return a.loop(ctx, listersv1.NewNodeLister(informer.GetIndexer()), poke)
}

// nodeInformer watches every node through kube's node resource alone:
// the agent runs in the gravity binary, which need not carry every API
// group's client and informers.
func (a *Agent) nodeInformer() cache.SharedIndexInformer {
	return cache.NewSharedIndexInformer(a.clients.Reader.Nodes().ListWatcher(), &corev1.Node{}, a.o.Resync, cache.Indexers{})
}

func (a *Agent) loop(ctx context.Context, nodes listersv1.NodeLister, poke <-chan struct{}) error {
	tick := time.NewTicker(a.o.Resync)
	defer tick.Stop()
	for {
		if err := a.Reconcile(ctx, nodes); err != nil {
			a.healthy.Store(false)
			a.o.Log.Warn("pod network: will retry", "err", err)
		} else {
			a.healthy.Store(true)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-poke:
		case <-tick.C:
		}
		// Let a burst of node updates (every kubelet heartbeat is one)
		// settle into one pass.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Reconcile announces this node's subnet if its Node lacks it, then makes
// the kernel's routes match the other nodes.
func (a *Agent) Reconcile(ctx context.Context, nodes listersv1.NodeLister) error {
	list, err := nodes.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	peers := make([]Peer, 0, len(list))
	var self *corev1.Node
	for _, n := range list {
		if n.Name == a.o.NodeName {
			self = n
		}
		peers = append(peers, PeerFromNode(n))
	}
	if err := a.announce(ctx, self); err != nil {
		return err
	}
	want, skipped := Desired(Peer{Name: a.o.NodeName, PodCIDR: a.o.PodCIDR}, a.o.ClusterCIDR, peers)
	for _, err := range skipped {
		a.o.Log.Warn("pod network: node left out", "err", err)
	}
	if err := a.apply(want); err != nil {
		return err
	}
	return a.followMasters(list)
}

// followMasters tells OnMasters the masters when they changed.
func (a *Agent) followMasters(nodes []*corev1.Node) error {
	if a.o.OnMasters == nil {
		return nil
	}
	masters := Masters(nodes)
	key := fmt.Sprint(masters)
	if len(masters) == 0 || key == a.masters {
		return nil
	}
	if err := a.o.OnMasters(masters); err != nil {
		return fmt.Errorf("following the masters: %w", err)
	}
	a.o.Log.Info("masters", "addresses", key)
	a.masters = key
	return nil
}

// Masters are the addresses of the nodes with the control-plane role
// (gravity names nodes by their address), sorted.
func Masters(nodes []*corev1.Node) []net.IP {
	var names []string
	for _, n := range nodes {
		if _, ok := n.Labels["node-role.kubernetes.io/control-plane"]; ok {
			names = append(names, n.Name)
		}
	}
	sort.Strings(names)
	var out []net.IP
	for _, name := range names {
		if ip := net.ParseIP(name); ip != nil {
			out = append(out, ip)
		}
	}
	return out
}

// announce patches this node's annotation when it differs; a node that has
// not registered yet is not an error, kubelet is on its way.
func (a *Agent) announce(ctx context.Context, self *corev1.Node) error {
	if self == nil {
		return fmt.Errorf("node %s is not registered yet", a.o.NodeName)
	}
	if self.Annotations[AnnotationPodCIDR] == a.o.PodCIDR.String() {
		return nil
	}
	_, err := a.clients.Node.Nodes().Patch(ctx, a.o.NodeName, types.MergePatchType,
		announcePatch(a.o.PodCIDR), metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("node %s is not registered yet", a.o.NodeName)
	}
	if err != nil {
		return fmt.Errorf("announce pod subnet %s: %w", a.o.PodCIDR, err)
	}
	a.o.Log.Info("pod network: announced", "node", a.o.NodeName, "subnet", a.o.PodCIDR)
	return nil
}

func (a *Agent) apply(want []Route) error {
	have, err := a.table.List()
	if err != nil {
		return err
	}
	replace, remove := Diff(have, want)
	var errs []error
	for _, r := range remove {
		if err := a.table.Delete(r); err != nil {
			errs = append(errs, err)
			continue
		}
		a.o.Log.Info("pod network: route removed", "route", r.String())
	}
	for _, r := range replace {
		if err := a.table.Replace(r); err != nil {
			errs = append(errs, err)
			continue
		}
		a.o.Log.Info("pod network: route set", "route", r.String())
	}
	return errors.Join(errs...)
}

// serveHealth answers /healthz on HealthAddr: 200 once the routes are in
// place, 503 before and after a failed pass.
func (a *Agent) serveHealth() (stop func(), err error) {
	ln, err := net.Listen("tcp", a.o.HealthAddr)
	if err != nil {
		return nil, fmt.Errorf("pod network agent: health endpoint: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.healthy.Load() {
			http.Error(w, "routes not in place yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}
