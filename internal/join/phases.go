package join

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/opengravity/gravity/internal/clusterservice"
	"github.com/opengravity/gravity/internal/install"
	"github.com/opengravity/gravity/internal/kube"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/registrysync"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/runtime/node"
	"github.com/opengravity/gravity/internal/store"
)

// etcdStep adds this master to etcd as a learner (the cluster service
// promotes it once it has caught up) and writes the node config with the
// members it starts with.
type etcdStep struct {
	cfg install.Config
	ip  string
	c   *clusterservice.Client
	op  string
}

func (s etcdStep) Execute(ctx context.Context) error {
	if s.c == nil {
		return errors.New("joining etcd needs the cluster service")
	}
	m, err := s.c.Etcd(ctx, http.MethodPost, s.op)
	if err != nil {
		return err
	}
	rn, err := s.cfg.RuntimeNodeOf(s.ip)
	if err != nil {
		return err
	}
	// The members it joins, then itself: a node's etcd bootstraps a new
	// cluster only when it is the first (node.EtcdClusterState).
	rn.MasterIPs = nil
	for _, ip := range m.Members {
		if ip != s.ip {
			rn.MasterIPs = append(rn.MasterIPs, net.ParseIP(ip))
		}
	}
	rn.MasterIPs = append(rn.MasterIPs, net.ParseIP(s.ip))
	data, err := node.FormatNode(rn)
	if err != nil {
		return err
	}
	return config.Write("/", map[string][]byte{s.cfg.NodeConfigPath(): data}, config.FileMode)
}

func (s etcdStep) Rollback(ctx context.Context) error {
	if s.c == nil {
		return errors.New("leaving etcd needs the cluster service: run the rollback again once a master answers")
	}
	_, err := s.c.Etcd(ctx, http.MethodDelete, s.op)
	return err
}

// registryStep copies every image of the master the join went through
// into this master's registry, with this master's pusher certificate.
type registryStep struct {
	cfg  install.Config
	ip   string
	from string // the cluster service's host:port
}

func (s registryStep) Execute(ctx context.Context) error {
	rn, err := s.cfg.RuntimeNodeOf(s.ip)
	if err != nil {
		return err
	}
	p := rn.Paths()
	cfg, err := pki.ClientTLS(p.Cert(pki.RegistryPusher), p.Key(pki.RegistryPusher), p.Cert(pki.ClusterCAName))
	if err != nil {
		return fmt.Errorf("registry pusher: %w", err)
	}
	cfg.ServerName = pki.RegistryHost
	tr := &http.Transport{TLSClientConfig: cfg}
	host, _, err := net.SplitHostPort(s.from)
	if err != nil {
		return err
	}
	port := fmt.Sprint(config.RegistryPort)
	_, err = registrysync.Sync(ctx, net.JoinHostPort(host, port), net.JoinHostPort(s.ip, port), tr)
	return err
}

// Rollback empties nothing: the registry's storage goes with the runtime's
// rollback.
func (registryStep) Rollback(context.Context) error { return nil }

// Phase types of a join, run on the joining node (the cluster service
// plans them: clusterservice.ExpandPlan).
const (
	typeAdmit     = clusterservice.PhaseAdmit
	typeBootstrap = clusterservice.PhaseBootstrap
	typePull      = clusterservice.PhasePull
	typeRuntime   = clusterservice.PhaseRuntime
	typeWait      = clusterservice.PhaseWait
	typeEtcd      = clusterservice.PhaseEtcd
	typeRegistry  = clusterservice.PhaseRegistry
	typeHook      = clusterservice.PhaseHook
)

// installConfig is the install operation's view of this node, which
// install's pull and runtime phases run from.
func installConfig(stateDir string, rec *record) install.Config {
	n := rec.Node
	c := install.Config{OperationID: rec.OperationID, ClusterName: n.ClusterName, AppName: n.App, AppVersion: n.AppVersion,
		AppPackage: n.AppPackage, BaseVersion: n.BaseVersion, StateDir: stateDir, CloudProvider: n.CloudProvider,
		PodCIDR: n.PodCIDR, ServiceCIDR: n.ServiceCIDR, DNSUpstreams: n.DNSUpstreams, PauseImage: n.PauseImage, Created: n.Created}
	for _, m := range n.Masters {
		c.Nodes = append(c.Nodes, install.Node{IP: m.IP, Hostname: m.Hostname, Role: m.Role, Master: true})
	}
	s := n.Self
	c.Nodes = append(c.Nodes, install.Node{IP: s.IP, Hostname: s.Hostname, Role: s.Role, Master: s.Master, PodSubnet: s.PodSubnet})
	return c
}

// mirror keeps a join's plan on this node, where it is saved before each
// phase runs and after it, and sends every state of it to the cluster,
// where `gravity status` and `gravity plan` on a master show it. The
// sends run behind the phases, newest state only: a master answering a
// save takes a few hundred milliseconds, a dozen of which would add
// seconds to every join. Flush waits for the last one, before the
// operation ends in the cluster (Complete or Rollback), which a stale
// save must not follow.
type mirror struct {
	local plan.FileStore
	c     *clusterservice.Client
	log   *slog.Logger

	mu   sync.Mutex
	idle *sync.Cond
	next []byte // the newest plan not yet sent, as JSON
	busy bool
}

func newMirror(local plan.FileStore, c *clusterservice.Client, log *slog.Logger) *mirror {
	m := &mirror{local: local, c: c, log: log}
	m.idle = sync.NewCond(&m.mu)
	return m
}

func (m *mirror) Load(ctx context.Context) (*plan.Plan, error) { return m.local.Load(ctx) }

func (m *mirror) Save(ctx context.Context, p *plan.Plan) error {
	if err := m.local.Save(ctx, p); err != nil {
		return err
	}
	// A finished plan reaches the cluster through Complete (which also
	// labels the node) or Rollback (which also forgets it), not as a save.
	if st := p.State(); m.c == nil || st == plan.Completed || st == plan.RolledBack {
		return nil
	}
	// The runner goes on changing p: what is sent is this state of it.
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next = data
	if !m.busy {
		m.busy = true
		go m.send()
	}
	return nil
}

func (m *mirror) send() {
	for {
		m.mu.Lock()
		data := m.next
		m.next = nil
		if data == nil {
			m.busy = false
			m.idle.Broadcast()
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
		var p plan.Plan
		err := json.Unmarshal(data, &p)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err = m.c.SavePlan(ctx, &p)
			cancel()
		}
		if err != nil && m.log != nil {
			m.log.Warn("plan not saved in the cluster", "operation", p.OperationID, "error", err.Error())
		}
	}
}

// Flush waits until the cluster has been sent the last plan saved.
func (m *mirror) Flush() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.busy {
		m.idle.Wait()
	}
}

func runner(o Options, rec *record, c *clusterservice.Client, p printer) (*plan.Runner, *mirror) {
	store := newMirror(plan.FileStore{Path: planPath(o.StateDir)}, c, o.Log)
	return &plan.Runner{Store: store, Executors: executors(o.StateDir, rec, c, store, o.Out),
		Progress: func(e plan.Event) {
			switch e.State {
			case plan.InProgress:
				p.say("%s", e.Phase.Description)
			case plan.RolledBack:
				p.say("Rolled back: %s", e.Phase.Description)
			}
		}}, store
}

// executors registers what runs each phase type of a join on this node.
func executors(stateDir string, rec *record, c *clusterservice.Client, st *mirror, out interface{ Write([]byte) (int, error) }) plan.Registry {
	cfg := installConfig(stateDir, rec)
	ip := rec.Node.Self.IP
	r := plan.Registry{}
	r.Register(typeAdmit, func(*plan.Phase) (plan.Executor, error) { return admitStep{c: c, store: st}, nil })
	r.Register(typeBootstrap, func(*plan.Phase) (plan.Executor, error) {
		return bootstrapStep{cfg: cfg, ip: ip, c: c, op: rec.OperationID}, nil
	})
	r.Register(typePull, func(*plan.Phase) (plan.Executor, error) {
		inner, err := install.NodeExecutor(cfg, ip, install.NodeTypePull, out)
		return pullStep{cfg: cfg, c: c, inner: inner}, err
	})
	r.Register(typeRuntime, func(*plan.Phase) (plan.Executor, error) {
		return install.NodeExecutor(cfg, ip, install.NodeTypeRuntime, out)
	})
	r.Register(typeWait, func(*plan.Phase) (plan.Executor, error) {
		return waitStep{cfg: cfg, ip: ip, c: c, op: rec.OperationID}, nil
	})
	r.Register(typeEtcd, func(*plan.Phase) (plan.Executor, error) {
		return etcdStep{cfg: cfg, ip: ip, c: c, op: rec.OperationID}, nil
	})
	r.Register(typeRegistry, func(*plan.Phase) (plan.Executor, error) {
		return registryStep{cfg: cfg, ip: ip, from: rec.Peer}, nil
	})
	r.Register(typeHook, func(ph *plan.Phase) (plan.Executor, error) {
		return hookStep{c: c, op: rec.OperationID, hook: ph.Data[clusterservice.DataHook], out: out}, nil
	})
	return r
}

// hookStep has the cluster service run one of the application's node
// hooks for this join (a Job in the cluster; this node has no rights to
// run it), its output shown here.
type hookStep struct {
	c        *clusterservice.Client
	op, hook string
	out      io.Writer
}

func (h hookStep) Execute(ctx context.Context) error { return h.c.RunHook(ctx, h.op, h.hook, h.out) }

// Rollback: a node hook's effects are the application's, as in Gravity,
// which undid none; the join's rollback takes the node out, which the
// preNodeRemove/postNodeRemove hooks do not see either.
func (hookStep) Rollback(context.Context) error { return nil }

// admitStep is the cluster's side of the join: done by the service when
// it admitted the node; undone by it too (the Node object and the pod
// subnet go).
type admitStep struct {
	c     *clusterservice.Client
	store *mirror
}

func (admitStep) Execute(context.Context) error {
	return errors.New("the node is admitted by the cluster service: run `gravity join` again")
}

func (s admitStep) Rollback(ctx context.Context) error {
	if s.c == nil {
		return errors.New("no connection to the cluster to undo the admission: run `gravity plan rollback` again once a master answers")
	}
	s.store.Flush()
	p, err := s.store.Load(ctx)
	if err != nil {
		return err
	}
	return s.c.Rollback(ctx, p)
}

// bootstrapStep makes this node's keys, has the cluster sign its
// certificate requests and writes its config, certificates and
// kubeconfigs. No CA key reaches a worker.
type bootstrapStep struct {
	cfg install.Config
	ip  string
	c   *clusterservice.Client
	op  string
}

func (s bootstrapStep) runtimeNode() (config.Node, error) { return s.cfg.RuntimeNodeOf(s.ip) }

func (s bootstrapStep) Execute(ctx context.Context) error {
	if s.c == nil {
		return errors.New("bootstrap needs the cluster service")
	}
	rn, err := s.runtimeNode()
	if err != nil {
		return err
	}
	names, err := pki.NodeCertNames(rn.PKINode())
	if err != nil {
		return err
	}
	keys, err := pki.NewNodeRequests(names)
	if err != nil {
		return err
	}
	resp, err := s.c.Certs(ctx, s.op, keys.CSRs)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	pairs, err := keys.Complete(resp.Certs)
	if err != nil {
		return err
	}
	ca, err := pki.ParseCertificatePEM(resp.CA)
	if err != nil {
		return fmt.Errorf("cluster CA: %w", err)
	}
	p := rn.Paths()
	data, err := node.FormatNode(rn)
	if err != nil {
		return err
	}
	if err := config.Write("/", map[string][]byte{s.cfg.NodeConfigPath(): data}, config.FileMode); err != nil {
		return err
	}
	if err := pki.WriteDir(p.PKI, pairs); err != nil {
		return err
	}
	if rn.IsMaster() {
		if len(resp.CAFiles) == 0 {
			return errors.New("the cluster sent a master no CA set")
		}
		if _, err := pki.WriteFiles(p.PKI, resp.CAFiles); err != nil {
			return err
		}
	} else if err := config.Write("/", map[string][]byte{p.Cert(pki.ClusterCAName): resp.CA}, pki.CertMode); err != nil {
		return err
	}
	kcs, err := config.Kubeconfigs(rn, ca, pairs)
	if err != nil {
		return err
	}
	if err := config.Write("/", kcs, pki.KeyMode); err != nil {
		return err
	}
	if rn.IsMaster() {
		return install.InstallRootKubeconfig(p.Kubeconfig(config.KubeconfigAdmin))
	}
	return nil
}

func (s bootstrapStep) Rollback(context.Context) error {
	rn, err := s.runtimeNode()
	if err != nil {
		return err
	}
	p := rn.Paths()
	// First, while the admin kubeconfig to compare with is still there.
	errs := []error{install.RestoreRootKubeconfig(p.Kubeconfig(config.KubeconfigAdmin))}
	return errors.Join(append(errs, os.RemoveAll(p.PKI), os.RemoveAll(p.Config))...)
}

// pullStep fetches the runtime package from the cluster into this node's
// store, then installs it as install does.
type pullStep struct {
	cfg   install.Config
	c     *clusterservice.Client
	inner plan.Executor
}

func (s pullStep) Execute(ctx context.Context) error {
	if s.c == nil {
		return errors.New("pulling packages needs the cluster service")
	}
	st, err := store.Open(s.cfg.PackagesDir())
	if err != nil {
		return err
	}
	if err := s.c.FetchPackage(ctx, st, clusterservice.RuntimePackage+":"+s.cfg.BaseVersion); err != nil {
		return err
	}
	return s.inner.Execute(ctx)
}

func (s pullStep) Rollback(ctx context.Context) error {
	return errors.Join(s.inner.Rollback(ctx), os.RemoveAll(s.cfg.PackagesDir()))
}

// waitStep waits for the node to be Ready, as its kubelet reports it,
// and on a master for its etcd member to be a voting one.
type waitStep struct {
	cfg install.Config
	ip  string
	c   *clusterservice.Client
	op  string
}

func (s waitStep) Execute(ctx context.Context) error {
	rn, err := s.cfg.RuntimeNodeOf(s.ip)
	if err != nil {
		return err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", rn.Paths().Kubeconfig(config.KubeconfigKubelet))
	if err != nil {
		return err
	}
	kc, err := kube.New(rc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var last string
	for {
		n, err := kc.Nodes().Get(ctx, rn.Name, metav1.GetOptions{})
		switch {
		case err != nil:
			last = err.Error()
		case !ready(n):
			last = "not Ready yet"
		case !rn.IsMaster():
			return nil
		default:
			if s.c == nil {
				return errors.New("waiting for the etcd member needs the cluster service")
			}
			m, err := s.c.Etcd(ctx, http.MethodGet, s.op)
			switch {
			case err != nil:
				last = err.Error()
			case m.Promoted:
				return nil
			default:
				last = "its etcd member is still a learner"
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s: %s: %w", rn.Name, last, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// Rollback has nothing to undo: waiting changed nothing.
func (waitStep) Rollback(context.Context) error { return nil }

func ready(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
