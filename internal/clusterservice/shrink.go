package clusterservice

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/install/hook"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/runtime/apilb"
	"github.com/opengravity/gravity/internal/runtime/config"
)

// OperationShrink is the type of a node's removal, as Gravity named it.
const OperationShrink = "shrink"

// Phase types of a shrink, run by the service.
const (
	PhaseDrain      = "shrink-drain"
	PhaseEtcdRemove = "shrink-etcd"
	PhaseForget     = "shrink-node"
	PhaseDNS        = "shrink-dns"
	// PhaseEndpoints waits for the kubernetes service to drop a removed
	// master's API server, which can no longer read etcd: a pod sent there
	// (a node hook's Job) would have its token refused.
	PhaseEndpoints = "shrink-endpoints"
)

// RemoveRequest asks the service to take a node out of the cluster.
type RemoveRequest struct {
	// Force removes a node that does not answer, and a master even when
	// the etcd members left would not be a healthy majority.
	Force bool `json:"force,omitempty"`
}

// RemoveResponse is the shrink operation's plan, finished.
type RemoveResponse struct {
	Plan *plan.Plan `json:"plan"`
}

// mayRemove says whether the caller's verified certificate may remove
// node name: an admin's (system:masters, held on masters only) any node,
// a node's own only itself.
func mayRemove(state *tls.ConnectionState, name string) error {
	if state == nil || len(state.VerifiedChains) == 0 {
		return errors.New("removing a node takes a client certificate of the cluster")
	}
	cert := state.VerifiedChains[0][0]
	if slices.Contains(cert.Subject.Organization, pki.SystemMasters) {
		return nil
	}
	if cert.Subject.CommonName == "system:node:"+name && slices.Contains(cert.Subject.Organization, pki.SystemNodes) {
		return nil
	}
	return fmt.Errorf("%s may not remove node %s", cert.Subject.CommonName, name)
}

// handleRemove runs a shrink operation for node name: drain it, take it
// out of etcd (a master), forget it, update registry.local. The plan is
// recorded in the cluster as it runs.
func (s *Service) handleRemove(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := mayRemove(r.TLS, name); err != nil {
		s.fail(w, http.StatusForbidden, err)
		return
	}
	var req RemoveRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	p, err := s.remove(r.Context(), name, req.Force)
	s.answer(w, RemoveResponse{Plan: p}, err)
}

func (s *Service) remove(ctx context.Context, name string, force bool) (*plan.Plan, error) {
	s.joins.Lock()
	defer s.joins.Unlock()
	var p *plan.Plan
	err := s.withLease(ctx, func() error {
		var err error
		p, err = s.shrink(ctx, name, force)
		return err
	})
	return p, err
}

// shrink plans and runs (or resumes) the removal of node name.
func (s *Service) shrink(ctx context.Context, name string, force bool) (*plan.Plan, error) {
	c := s.cfg.Clients
	ops, err := cluster.Operations(ctx, c)
	if err != nil {
		return nil, err
	}
	for _, op := range ops {
		if done(op) || op.OperationType != OperationExpand || (op.Data[DataNode] != name && hostnameOfPlan(op) != name) {
			continue
		}
		if !force {
			return nil, refuse("node %s is still joining (operation %s): `gravity join` there resumes it and `gravity plan rollback` there undoes it; "+
				"if that host is gone, `gravity remove %s --force` rolls the join back from here", name, op.OperationID, name)
		}
		return s.abandonJoin(ctx, op)
	}
	for _, op := range ops {
		if done(op) {
			continue
		}
		if op.OperationType == OperationShrink && op.Data[DataNode] == name {
			// A removal that stopped half way (its master died): resume it.
			s.cfg.Log.Info("resuming the removal", "node", name, "operation", op.OperationID)
			r := plan.Runner{Store: cluster.OperationStore{Clients: c, ID: op.OperationID}, Executors: s.shrinkExecutors(op.OperationID, name, force)}
			return r.Resume(ctx)
		}
		if !force {
			return nil, busyError{fmt.Errorf("operation %s (%s) is in progress", op.OperationID, op.OperationType)}
		}
	}
	n, err := c.Kube.Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, refuse("node %s: %v", name, err)
	}
	_, master := n.Labels[labelControlPlane]
	if master {
		masters, err := s.masterIPs(ctx)
		if err != nil {
			return nil, err
		}
		if len(masters) <= 1 {
			return nil, refuse("%s is the cluster's last master", name)
		}
		if err := s.checkQuorum(ctx, name); err != nil && !force {
			return nil, refuse("%v; --force removes it all the same", err)
		}
	}
	now := s.cfg.Now().UTC()
	leaf := func(typ, id, desc string) *plan.Phase {
		return &plan.Phase{ID: id, Type: typ, Description: desc, State: plan.Unstarted, Irreversible: true}
	}
	hooks, err := s.nodeHooks(ctx)
	if err != nil {
		return nil, err
	}
	var phases []*plan.Phase
	if pre := hookPhase(hooks, cluster.HookPreNodeRemove, "/preHook", name); pre != nil {
		pre.Irreversible = true
		phases = append(phases, pre)
	}
	phases = append(phases, leaf(PhaseDrain, "/drain", "Drain node "+name))
	if master {
		phases = append(phases, leaf(PhaseEtcdRemove, "/etcd", "Remove "+name+" from etcd"),
			leaf(PhaseEndpoints, "/endpoints", "Take the API server of "+name+" out of the kubernetes service"))
	}
	phases = append(phases, leaf(PhaseForget, "/node", "Remove node "+name+" and free its pod subnet"))
	if master {
		phases = append(phases, leaf(PhaseDNS, "/dns", "Make registry.local answer with the masters left"))
	}
	if post := hookPhase(hooks, cluster.HookPostNodeRemove, "/postHook", name); post != nil {
		post.Irreversible = true
		phases = append(phases, post)
	}
	p := &plan.Plan{Version: plan.SchemaVersion, OperationID: newID(), OperationType: OperationShrink,
		ClusterName: s.cfg.Self.ClusterName, Created: now,
		Description: fmt.Sprintf("Remove node %s (%s)", n.Labels[cluster.LabelHostname], name),
		Data:        map[string]string{DataNode: name, DataMaster: fmt.Sprint(master)}, Phases: phases}
	store := cluster.OperationStore{Clients: c, ID: p.OperationID}
	if err := store.Save(ctx, p); err != nil {
		return nil, err
	}
	r := plan.Runner{Store: store, Executors: s.shrinkExecutors(p.OperationID, name, force)}
	s.cfg.Log.Info("removing node", "node", name, "master", master, "force", force, "operation", p.OperationID)
	return r.Resume(ctx)
}

// step is an executor of the service's own phases; they cannot be rolled
// back (a drained, forgotten node joins again instead).
type step func(ctx context.Context) error

func (f step) Execute(ctx context.Context) error { return f(ctx) }
func (step) Rollback(context.Context) error {
	return errors.New("a removal cannot be rolled back: join the node again")
}

func (s *Service) shrinkExecutors(op, name string, force bool) plan.Registry {
	r := plan.Registry{}
	fixed := func(f step) plan.Factory { return func(*plan.Phase) (plan.Executor, error) { return f, nil } }
	r.Register(PhaseDrain, fixed(func(ctx context.Context) error {
		err := s.drain(ctx, name)
		if err != nil && force {
			s.cfg.Log.Warn("drain failed; removing the node all the same (--force)", "node", name, "error", err.Error())
			return nil
		}
		return err
	}))
	r.Register(PhaseEtcdRemove, fixed(func(ctx context.Context) error { return s.forgetMember(ctx, name) }))
	r.Register(PhaseForget, fixed(func(ctx context.Context) error { return s.forgetNode(ctx, name) }))
	r.Register(PhaseDNS, fixed(s.updateDNS))
	r.Register(PhaseEndpoints, fixed(func(ctx context.Context) error { return s.dropAPIServer(ctx, name) }))
	r.Register(PhaseHook, func(ph *plan.Phase) (plan.Executor, error) {
		return step(func(ctx context.Context) error {
			out := hook.NewTail(maxHookOutput)
			if err := s.runNodeHook(ctx, op, ph.Data[DataHook], name, out); err != nil {
				return fmt.Errorf("%w; its output ends:\n%s", err, out.Last(4096))
			}
			s.cfg.Log.Info("node hook done", "hook", ph.Data[DataHook], "node", name, "output", out.Last(4096))
			return nil
		}), nil
	})
	return r
}

// checkQuorum says why removing master name would leave etcd without a
// healthy majority, or nil.
func (s *Service) checkQuorum(ctx context.Context, name string) error {
	cli, err := s.etcd(ctx)
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer cli.Close()
	list, err := cli.MemberList(ctx)
	if err != nil {
		return fmt.Errorf("etcd members: %w", err)
	}
	left, healthy := 0, 0
	for _, m := range list.Members {
		ip := memberIP(m.PeerURLs)
		if ip == name {
			continue
		}
		left++
		if len(m.ClientURLs) > 0 && memberHealthy(ctx, cli, m.ClientURLs[0]) {
			healthy++
		}
	}
	if healthy <= left/2 {
		return fmt.Errorf("etcd would be left with %d healthy of %d members, not a majority", healthy, left)
	}
	return nil
}

func memberHealthy(ctx context.Context, cli *clientv3.Client, endpoint string) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err := cli.Status(ctx, endpoint)
	return err == nil
}

// apiServerDropTimeout bounds the wait for the endpoint reconciler: the
// master lease it reads lasts 15 s, and it runs every 10 s.
const apiServerDropTimeout = 90 * time.Second

// dropAPIServer deletes removed master ip's lease, which its API server
// can no longer renew (its etcd member is gone), so that the other API
// servers take it out of the kubernetes service at once rather than when
// the lease runs out, and waits until they have.
func (s *Service) dropAPIServer(ctx context.Context, ip string) error {
	if cli, err := s.etcd(ctx); err == nil {
		_, err = cli.Delete(ctx, masterLeasePrefix+ip)
		cli.Close()
		if err != nil {
			s.cfg.Log.Warn("deleting the master lease", "node", ip, "error", err.Error())
		}
	}
	ctx, cancel := context.WithTimeout(ctx, apiServerDropTimeout)
	defer cancel()
	backend := net.JoinHostPort(ip, fmt.Sprint(config.APIServerPort))
	for {
		servers, err := apilb.APIServers(ctx, s.cfg.Clients.Dynamic)
		if err == nil && !slices.Contains(servers, backend) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the kubernetes service still lists the API server of %s (%v)", ip, servers)
		case <-time.After(time.Second):
		}
	}
}

// masterLeasePrefix is where API servers keep the leases the endpoint
// reconciler reads (under the default --etcd-prefix).
const masterLeasePrefix = "/registry/masterleases/"
