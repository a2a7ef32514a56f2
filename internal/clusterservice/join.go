package clusterservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/runtime/config"
)

// OperationExpand is the type of a join's operation, as Gravity named it.
const OperationExpand = "expand"

// MaxMasters is how many masters the cluster grows to before joining nodes
// become workers.
const MaxMasters = 3

// Data keys of an expand plan that the service reads back.
const (
	DataNode     = "node"   // the joining node's IP
	DataMaster   = "master" // "true" when it joins as a master
	DataHostname = "hostname"
	DataRole     = "role" // its node profile
)

// Phase types of an expand plan. The service runs the first when it
// admits the node; the joining node runs the rest.
const (
	PhaseAdmit     = "admit"
	PhaseBootstrap = "join-bootstrap"
	PhasePull      = "join-pull"
	PhaseRuntime   = "join-runtime"
	PhaseWait      = "join-wait"
	// A master's: its etcd member, its registry's images.
	PhaseEtcd     = "join-etcd"
	PhaseRegistry = "join-registry"
)

// ExpandPlan is the plan of node self's join, admitted now with the pod
// subnet it was given; hooks are the running version's node hooks.
func ExpandPlan(id, clusterName string, self Member, baseVersion string, hooks []string, now time.Time) *plan.Plan {
	ip, kind := self.IP, "node"
	if self.Master {
		kind = "master node"
	}
	leaf := func(typ, id, desc string, requires ...string) *plan.Phase {
		return &plan.Phase{ID: id, Type: typ, Description: desc, Node: ip, Requires: requires, State: plan.Unstarted}
	}
	admit := leaf(PhaseAdmit, "/admit", fmt.Sprintf("Admit %s %s: pod subnet %s", kind, ip, self.PodSubnet))
	admit.Node, admit.State, admit.Started, admit.Finished = "", plan.Completed, now, now
	boot := leaf(PhaseBootstrap, "/bootstrap/"+ip, fmt.Sprintf("Bootstrap %s %s: keys made there, certificates from the cluster", kind, ip), admit.ID)
	pull := leaf(PhasePull, "/pull/"+ip, fmt.Sprintf("Pull the runtime package %s from the cluster on %s %s", baseVersion, kind, ip), boot.ID)
	phases := []*plan.Phase{admit, boot, pull}
	prev := pull.ID
	if pre := hookPhase(hooks, cluster.HookPreNodeAdd, "/preHook", ip, prev); pre != nil {
		phases, prev = append(phases, pre), pre.ID
	}
	if self.Master {
		etcd := leaf(PhaseEtcd, "/etcd/"+ip, fmt.Sprintf("Add %s to etcd as a learner, promoted once it has caught up", ip), prev)
		phases, prev = append(phases, etcd), etcd.ID
	}
	sys := leaf(PhaseRuntime, "/system/"+ip, fmt.Sprintf("Start the Kubernetes runtime on %s %s", kind, ip), prev)
	wait := leaf(PhaseWait, "/wait/"+ip, fmt.Sprintf("Wait for node %s to be Ready", ip), sys.ID)
	phases, prev = append(phases, sys, wait), wait.ID
	if self.Master {
		reg := leaf(PhaseRegistry, "/registry/"+ip, fmt.Sprintf("Populate the Docker registry on master node %s from the other masters", ip), prev)
		phases, prev = append(phases, reg), reg.ID
	}
	if post := hookPhase(hooks, cluster.HookPostNodeAdd, "/postHook", ip, prev); post != nil {
		phases = append(phases, post)
	}
	role := self.Role
	if self.Master {
		role += " (master)"
	}
	return &plan.Plan{Version: plan.SchemaVersion, OperationID: id, OperationType: OperationExpand, ClusterName: clusterName,
		Description: fmt.Sprintf("Join node %s (%s) as %s", self.Hostname, ip, role), Created: now,
		Data:   map[string]string{DataNode: ip, DataMaster: fmt.Sprint(self.Master), DataHostname: self.Hostname, DataRole: self.Role},
		Phases: phases}
}

// handleJoin admits a node: checks that it may join (version, duplicates,
// no operation in the way), decides its role and pod subnet, and records
// the expand operation with its first plan; the node drives the rest.
func (s *Service) handleJoin(w http.ResponseWriter, r *http.Request) {
	var req JoinRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	resp, err := s.join(r.Context(), req)
	if err == nil {
		s.cfg.Log.Info("node admitted", "node", resp.Node.Self.IP, "hostname", resp.Node.Self.Hostname,
			"master", resp.Node.Self.Master, "operation", resp.OperationID)
	}
	s.answer(w, resp, err)
}

var errBadRequest = errors.New("refused")

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

func (s *Service) join(ctx context.Context, req JoinRequest) (*JoinResponse, error) {
	ip := net.ParseIP(req.IP)
	if ip == nil || ip.To4() == nil {
		return nil, refuse("advertise address %q is not an IPv4 address", req.IP)
	}
	if err := checkHostname(req.Hostname); err != nil {
		return nil, refuse("%v", err)
	}
	if req.Version != s.cfg.Version {
		return nil, refuse("this gravity is version %s and the cluster runs %s: copy /usr/local/bin/gravity from a master and join with it",
			req.Version, s.cfg.Version)
	}
	s.joins.Lock()
	defer s.joins.Unlock()
	var resp *JoinResponse
	err := s.withLease(ctx, func() error {
		var err error
		resp, err = s.admit(ctx, req)
		return err
	})
	return resp, err
}

// admit is join's checks and records, under the operations lease.
func (s *Service) admit(ctx context.Context, req JoinRequest) (*JoinResponse, error) {
	c := s.cfg.Clients
	ops, err := cluster.Operations(ctx, c)
	if err != nil {
		return nil, err
	}
	if req.OperationID != "" {
		return s.resumeJoin(ctx, req, ops)
	}
	info, err := cluster.LoadInfo(ctx, c)
	if err != nil {
		return nil, err
	}
	if info.State != "active" && info.State != "expanding" {
		return nil, busyError{fmt.Errorf("the cluster is %s, not active", info.State)}
	}
	nodes, err := c.Kube.Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	for _, n := range nodes.Items {
		if n.Name == req.IP || nodeIP(n) == req.IP {
			return nil, refuse("a node with address %s is already in the cluster (node %s): run `gravity leave` there first, or `gravity remove %s` from a master", req.IP, n.Name, n.Name)
		}
		if n.Labels[cluster.LabelHostname] == req.Hostname || n.Labels[corev1.LabelHostname] == req.Hostname {
			return nil, refuse("a node with hostname %s is already in the cluster (node %s)", req.Hostname, n.Name)
		}
	}
	if err := degraded(nodes.Items, ops); err != nil {
		return nil, refuse("%v", err)
	}
	resolved, err := s.resolveRole(ctx, req, nodes.Items)
	if err != nil {
		return nil, err
	}
	master, role := resolved.Master, resolved.Role
	// Workers join side by side; a master joins alone (etcd grows by one
	// member at a time).
	for _, op := range ops {
		if done(op) {
			continue
		}
		if op.OperationType == OperationExpand && op.Data[DataNode] == req.IP {
			return nil, refuse("node %s is joining already (operation %s): run `gravity join` there again to resume it, or `gravity plan rollback`", req.IP, op.OperationID)
		}
		if master || op.OperationType != OperationExpand || op.Data[DataMaster] == "true" {
			what := op.Description
			if what == "" {
				what = op.OperationType
			}
			return nil, busyError{fmt.Errorf("operation %s (%s) is in progress", op.OperationID, what)}
		}
	}
	subnet, err := s.allocateSubnet(ctx, req.IP, nodes.Items)
	if err != nil {
		return nil, err
	}
	self := Member{IP: req.IP, Hostname: req.Hostname, Role: role, Master: master, PodSubnet: subnet}
	base, err := s.baseVersion()
	if err != nil {
		_ = s.releaseSubnet(ctx, req.IP)
		return nil, err
	}
	hooks, err := s.nodeHooks(ctx)
	if err != nil {
		_ = s.releaseSubnet(ctx, req.IP)
		return nil, err
	}
	p := ExpandPlan(newID(), s.cfg.Self.ClusterName, self, base, hooks, s.cfg.Now().UTC())
	if err := cluster.SaveOperation(ctx, c, p); err != nil {
		_ = s.releaseSubnet(ctx, req.IP)
		return nil, err
	}
	if err := s.setState(ctx, "expanding"); err != nil {
		return nil, err
	}
	return s.response(p, self, info, nodes.Items)
}

// resumeJoin answers a node that restarts its join with the operation it
// was given, as long as that operation is still open.
func (s *Service) resumeJoin(ctx context.Context, req JoinRequest, ops []*plan.Plan) (*JoinResponse, error) {
	i := slices.IndexFunc(ops, func(p *plan.Plan) bool { return p.OperationID == req.OperationID })
	if i < 0 {
		return nil, refuse("operation %s does not exist", req.OperationID)
	}
	op := ops[i]
	if op.OperationType != OperationExpand || op.Data[DataNode] != req.IP {
		return nil, refuse("operation %s is not the join of %s", req.OperationID, req.IP)
	}
	if done(op) {
		return nil, refuse("operation %s is %s", req.OperationID, op.State())
	}
	info, err := cluster.LoadInfo(ctx, s.cfg.Clients)
	if err != nil {
		return nil, err
	}
	nodes, err := s.cfg.Clients.Kube.Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	subnet, err := s.allocateSubnet(ctx, req.IP, nodes.Items)
	if err != nil {
		return nil, err
	}
	self := Member{IP: req.IP, Hostname: req.Hostname, Role: op.Data[DataRole], Master: op.Data[DataMaster] == "true", PodSubnet: subnet}
	return s.response(op, self, info, nodes.Items)
}

func (s *Service) response(p *plan.Plan, self Member, info cluster.Info, nodes []corev1.Node) (*JoinResponse, error) {
	n := s.cfg.Self
	base, err := s.baseVersion()
	if err != nil {
		return nil, err
	}
	var masters []Member
	for _, nd := range nodes {
		if _, ok := nd.Labels[labelControlPlane]; ok && nd.Name != self.IP {
			masters = append(masters, Member{IP: nd.Name, Master: true, Hostname: nd.Labels[cluster.LabelHostname],
				Role: nd.Labels[cluster.LabelRole]})
		}
	}
	if len(masters) == 0 {
		return nil, errors.New("the cluster has no master node")
	}
	return &JoinResponse{OperationID: p.OperationID, Plan: p, Node: NodeConfig{
		ClusterName: n.ClusterName, App: info.App, AppVersion: info.AppVersion, CloudProvider: info.Provider,
		BaseVersion: base, PodCIDR: n.PodCIDR, ServiceCIDR: n.ServiceCIDR, DNSUpstreams: n.DNSUpstreams,
		PauseImage: n.PauseImage, Masters: masters, Self: self, Created: info.Created}}, nil
}

// RuntimePackage is the runtime package's name in the store.
const RuntimePackage = "gravitational.io/runtime"

// baseVersion is the version of the runtime package this master serves: the
// one it runs itself (its bin dir, /usr/lib/gravity/<version>/bin), which
// after an upgrade is one of several in its store.
func (s *Service) baseVersion() (string, error) {
	if s.cfg.Packages == nil {
		return "", errors.New("this master has no package store to serve a joining node from")
	}
	entries, err := s.cfg.Packages.Entries()
	if err != nil {
		return "", err
	}
	own := filepath.Base(filepath.Dir(s.cfg.Self.BinDir))
	var found []string
	for _, e := range entries {
		if v, ok := strings.CutPrefix(e.Ref, RuntimePackage+":"); ok {
			if v == own {
				return v, nil
			}
			found = append(found, v)
		}
	}
	if len(found) == 1 && s.cfg.Self.BinDir == "" {
		return found[0], nil
	}
	return "", fmt.Errorf("this master's package store holds no runtime package of the version it runs (%s; it has %v)", own, found)
}

// handleCerts signs the joining node's certificate requests, with the
// names and addresses the cluster knows it by.
func (s *Service) handleCerts(w http.ResponseWriter, r *http.Request) {
	var req CertRequest
	op, ok := s.operationRequest(w, r, &req)
	if !ok {
		return
	}
	ip := op.Data[DataNode]
	n := s.cfg.Self
	n.Name, n.IP, n.Hostname = ip, net.ParseIP(ip), hostnameOfPlan(op)
	n.Roles = []string{config.RoleNode}
	if op.Data[DataMaster] == "true" {
		n.Roles = []string{config.RoleMaster, config.RoleNode}
	}
	certs, err := pki.SignNodeRequests(s.cfg.CAs, n.PKINode(), req.CSRs)
	if err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	resp := CertResponse{Certs: certs, CA: s.cfg.CAs.Cluster.CertPEM()}
	if n.IsMaster() {
		// A master signs (the controller manager), encrypts Secrets and
		// renews its own certificates: it holds the CA set, as every
		// master does. Workers never get it.
		if resp.CAFiles, err = pki.ReadFiles(s.cfg.Self.Paths().PKI); err != nil {
			s.fail(w, http.StatusInternalServerError, err)
			return
		}
	}
	s.cfg.Log.Info("certificates issued", "node", ip, "operation", op.OperationID, "count", len(certs), "caSet", n.IsMaster())
	writeJSON(w, http.StatusOK, resp)
}

// handlePlan saves the joining node's plan as the operation's.
func (s *Service) handlePlan(w http.ResponseWriter, r *http.Request) {
	var u PlanUpdate
	op, ok := s.operationRequest(w, r, &u)
	if !ok {
		return
	}
	if u.Plan == nil || u.Plan.OperationID != op.OperationID || u.Plan.OperationType != OperationExpand {
		s.fail(w, http.StatusBadRequest, fmt.Errorf("the plan is not operation %s's", op.OperationID))
		return
	}
	if err := u.Plan.Validate(); err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	if done(u.Plan) {
		s.fail(w, http.StatusBadRequest, errors.New("a finished plan is recorded by complete or rollback"))
		return
	}
	if u.Plan.Data[DataNode] != op.Data[DataNode] {
		s.fail(w, http.StatusBadRequest, errors.New("the plan is for another node"))
		return
	}
	if err := cluster.SaveOperation(r.Context(), s.cfg.Clients, u.Plan); err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// operationRequest reads the open operation of the request's path and
// decodes the body into v; it has answered the request when !ok.
func (s *Service) operationRequest(w http.ResponseWriter, r *http.Request, v any) (*plan.Plan, bool) {
	op, err := s.openOperation(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return nil, false
	}
	if err := decode(r, v); err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return nil, false
	}
	return op, true
}

// operationPlan is operationRequest for a body that carries the
// operation's own plan.
func (s *Service) operationPlan(w http.ResponseWriter, r *http.Request, what string) (*plan.Plan, PlanUpdate, bool) {
	var u PlanUpdate
	op, ok := s.operationRequest(w, r, &u)
	if !ok {
		return nil, u, false
	}
	if u.Plan == nil || u.Plan.OperationID != op.OperationID {
		s.fail(w, http.StatusBadRequest, fmt.Errorf("%s needs operation %s's plan", what, op.OperationID))
		return nil, u, false
	}
	return op, u, true
}

// handleComplete finishes a join: the node is labelled with its profile
// and role, and the cluster is active again once no other join is open.
func (s *Service) handleComplete(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	op, u, ok := s.operationPlan(w, r, "complete")
	if !ok {
		return
	}
	if !u.Plan.Done() {
		s.fail(w, http.StatusBadRequest, fmt.Errorf("complete needs operation %s's finished plan", op.OperationID))
		return
	}
	ip := op.Data[DataNode]
	if err := s.labelNode(ctx, ip, u.Plan); err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	if op.Data[DataMaster] == "true" {
		if err := s.updateDNS(ctx); err != nil {
			s.fail(w, http.StatusInternalServerError, err)
			return
		}
	}
	if err := s.scaleDNS(ctx); err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	if err := cluster.SaveOperation(ctx, s.cfg.Clients, u.Plan); err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	if err := s.settle(ctx); err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	s.cfg.Log.Info("node joined", "node", ip, "operation", op.OperationID)
	w.WriteHeader(http.StatusNoContent)
}

// handleRollback undoes the cluster's side of a join the node rolled back:
// its Node object, its subnet; the operation stays, rolled back.
func (s *Service) handleRollback(w http.ResponseWriter, r *http.Request) {
	op, u, ok := s.operationPlan(w, r, "rollback")
	if !ok {
		return
	}
	if err := s.undoJoin(r.Context(), op, u.Plan); err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	s.cfg.Log.Info("join rolled back", "node", op.Data[DataNode], "operation", op.OperationID)
	w.WriteHeader(http.StatusNoContent)
}

// undoJoin takes the node of expand operation op out of the cluster (its
// Node, its pod subnet, its etcd member) and records p, op's plan, rolled
// back: every phase that ran or was running.
func (s *Service) undoJoin(ctx context.Context, op, p *plan.Plan) error {
	ip := op.Data[DataNode]
	if err := s.forgetNode(ctx, ip); err != nil {
		return err
	}
	if op.Data[DataMaster] == "true" {
		if err := s.forgetMember(ctx, ip); err != nil {
			return err
		}
	}
	for _, ph := range p.Leaves() {
		if ph.State == plan.Completed || ph.State == plan.Failed || ph.State == plan.InProgress {
			ph.RollBack(s.cfg.Now().UTC())
		}
	}
	if err := cluster.SaveOperation(ctx, s.cfg.Clients, p); err != nil {
		return err
	}
	return s.settle(ctx)
}

// abandonJoin is a forced removal of a node that is still joining: its
// host died (or will not be back), so no `gravity join` there will resume
// or roll back the operation, which would hold the cluster expanding. The
// master undoes the cluster's side of the join from the operation's record.
// Should the host come back, its join is refused (the operation has ended)
// and `gravity leave --force` there cleans it.
func (s *Service) abandonJoin(ctx context.Context, op *plan.Plan) (*plan.Plan, error) {
	s.cfg.Log.Info("abandoning a join", "node", op.Data[DataNode], "operation", op.OperationID)
	if err := s.undoJoin(ctx, op, op); err != nil {
		return nil, fmt.Errorf("rolling back the join of %s (operation %s): %w", op.Data[DataNode], op.OperationID, err)
	}
	return op, nil
}

// drain cordons the node and deletes its pods, so that their controllers
// start them elsewhere before the node goes.
// Unlike an upgrade's drain (cluster.Drain), it does not wait for the pods
// to end: the node may be dead, and it is leaving either way.
func (s *Service) drain(ctx context.Context, name string) error {
	if err := cluster.Cordon(ctx, s.cfg.Clients, name, true); err != nil {
		return err
	}
	pods, err := s.cfg.Clients.Kube.Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + name})
	if err != nil {
		return fmt.Errorf("listing the pods of node %s: %w", name, err)
	}
	for _, p := range pods.Items {
		err := s.cfg.Clients.Kube.Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("draining node %s: pod %s/%s: %w", name, p.Namespace, p.Name, err)
		}
	}
	return nil
}

// forgetNode deletes ip's Node object and frees its pod subnet.
func (s *Service) forgetNode(ctx context.Context, ip string) error {
	err := s.cfg.Clients.Kube.Nodes().Delete(ctx, ip, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting node %s: %w", ip, err)
	}
	return s.releaseSubnet(ctx, ip)
}

// openOperation is an expand operation that has not ended.
func (s *Service) openOperation(ctx context.Context, id string) (*plan.Plan, error) {
	ops, err := cluster.Operations(ctx, s.cfg.Clients)
	if err != nil {
		return nil, err
	}
	for _, op := range ops {
		if op.OperationID != id {
			continue
		}
		if op.OperationType != OperationExpand {
			return nil, fmt.Errorf("operation %s is not a join", id)
		}
		if done(op) {
			return nil, fmt.Errorf("operation %s is %s", id, op.State())
		}
		return op, nil
	}
	return nil, fmt.Errorf("operation %s does not exist", id)
}

// settle puts the cluster back to active when no join is open.
func (s *Service) settle(ctx context.Context) error {
	ops, err := cluster.Operations(ctx, s.cfg.Clients)
	if err != nil {
		return err
	}
	for _, op := range ops {
		if !done(op) {
			return nil
		}
	}
	return s.setState(ctx, "active")
}

func (s *Service) setState(ctx context.Context, state string) error {
	info, err := cluster.LoadInfo(ctx, s.cfg.Clients)
	if err != nil {
		return err
	}
	if info.State == state {
		return nil
	}
	info.State = state
	return cluster.SaveInfo(ctx, s.cfg.Clients, info)
}

const labelControlPlane = "node-role.kubernetes.io/control-plane"

// labelNode records the joined node's profile and hostname, as install
// does for its nodes (kubelets may not set role labels themselves).
func (s *Service) labelNode(ctx context.Context, ip string, p *plan.Plan) error {
	d := p.Data
	labels := map[string]any{cluster.LabelRole: d[DataRole], cluster.LabelHostname: d[DataHostname]}
	if d[DataMaster] == "true" {
		labels[labelControlPlane] = ""
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	if err != nil {
		return err
	}
	if _, err := s.cfg.Clients.Kube.Nodes().Patch(ctx, ip, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("labelling node %s: %w", ip, err)
	}
	return nil
}

// degraded says why the cluster may not grow now: a node that is not
// Ready, other than one that is still joining.
func degraded(nodes []corev1.Node, ops []*plan.Plan) error {
	joining := map[string]bool{}
	for _, op := range ops {
		if !done(op) && op.OperationType == OperationExpand {
			joining[op.Data[DataNode]] = true
		}
	}
	for _, n := range nodes {
		if joining[n.Name] {
			continue
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
				return fmt.Errorf("the cluster is degraded: node %s is not Ready (%s); bring it back or `gravity remove %s --force` first",
					n.Name, c.Message, n.Name)
			}
		}
	}
	return nil
}

func done(p *plan.Plan) bool {
	st := p.State()
	return st == plan.Completed || st == plan.RolledBack
}

func nodeIP(n corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

func hostnameOfPlan(p *plan.Plan) string { return p.Data[DataHostname] }

// defaultRole is the profile of the first master: the manifest's first.
func defaultRole(nodes []corev1.Node) string {
	for _, n := range nodes {
		if _, ok := n.Labels[labelControlPlane]; ok && n.Labels[cluster.LabelRole] != "" {
			return n.Labels[cluster.LabelRole]
		}
	}
	return "node"
}

// checkHostname accepts what Kubernetes accepts as a node's hostname label.
func checkHostname(h string) error {
	if h == "" || len(h) > 63 {
		return fmt.Errorf("hostname %q: must be 1 to 63 characters", h)
	}
	for i, c := range h {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || (c >= 'A' && c <= 'Z')
		if !ok || (i == 0 && (c == '-' || c == '.')) {
			return fmt.Errorf("hostname %q: only letters, digits, '-' and '.' (not first)", h)
		}
	}
	return nil
}
