package clusterservice

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/install/hook"
	"github.com/opengravity/gravity/internal/plan"
)

// PhaseHook runs one of the application's node hooks (DataHook names it)
// as Gravity's expand and shrink did: in an expand plan, the joining node
// asks the service to run it (`/preHook` once the node has its packages,
// `/postHook` once it is Ready); in a shrink plan, the service runs it
// (`/preHook` before the drain, `/postHook` once the node is gone). The
// running version's hooks are the cluster's record (cluster.NodeHooks).
const (
	PhaseHook = "node-hook"
	DataHook  = "hook"
)

// HookResponse is a hook's output (its Job's logs, the last of them).
type HookResponse struct {
	Output string `json:"output"`
}

// maxHookOutput bounds what a hook's response carries.
const maxHookOutput = 64 << 10

// hookPhase is the phase of hook name for node, or nil when the running
// version has no such hook.
func hookPhase(hooks []string, name, id, node string, requires ...string) *plan.Phase {
	if !slices.Contains(hooks, name) {
		return nil
	}
	return &plan.Phase{ID: id, Type: PhaseHook, Node: node, Requires: requires, State: plan.Unstarted,
		Description: fmt.Sprintf("Run the application's %s hook for node %s", name, node), Data: map[string]string{DataHook: name}}
}

// nodeHooks are the names of the running version's node hooks.
func (s *Service) nodeHooks(ctx context.Context) ([]string, error) {
	h, err := cluster.LoadNodeHooks(ctx, s.cfg.Clients)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, name := range cluster.NodeHookNames {
		if h.Jobs[name] != nil {
			out = append(out, name)
		}
	}
	return out, nil
}

// runNodeHook runs the running version's hook name for node (its address
// in GRAVITY_NODE_ADDR) as part of operation op. A version without the
// hook (the cluster was upgraded since the plan was made) runs nothing.
func (s *Service) runNodeHook(ctx context.Context, op, name, node string, out io.Writer) error {
	h, err := cluster.LoadNodeHooks(ctx, s.cfg.Clients)
	if err != nil {
		return err
	}
	job := h.Jobs[name]
	if job == nil {
		fmt.Fprintf(out, "%s %s has no %s hook\n", h.App.Name, h.App.Version, name)
		return nil
	}
	s.cfg.Log.Info("running node hook", "hook", name, "node", node, "operation", op)
	if err := h.App.Run(ctx, s.cfg.Clients.Kube, job, name, op, map[string]string{"GRAVITY_NODE_ADDR": node}, out); err != nil {
		return fmt.Errorf("%s hook: %w", name, err)
	}
	return nil
}

// handleHook runs a node hook of a join, at the joining node's request:
// only a hook phase of that open operation, for that node.
func (s *Service) handleHook(w http.ResponseWriter, r *http.Request) {
	var none struct{}
	op, ok := s.operationRequest(w, r, &none)
	if !ok {
		return
	}
	name := r.PathValue("hook")
	if !slices.ContainsFunc(op.Leaves(), func(ph *plan.Phase) bool { return ph.Type == PhaseHook && ph.Data[DataHook] == name }) {
		s.fail(w, http.StatusBadRequest, fmt.Errorf("operation %s has no %s hook to run", op.OperationID, name))
		return
	}
	out := hook.NewTail(maxHookOutput)
	err := s.runNodeHook(r.Context(), op.OperationID, name, op.Data[DataNode], out)
	if err != nil {
		err = fmt.Errorf("%w; its output ends:\n%s", err, out.Last(4096))
	}
	s.answer(w, HookResponse{Output: out.String()}, err)
}

// RunHook has the service run the node hook of a join's phase; the hook's
// output is written to out.
func (c *Client) RunHook(ctx context.Context, op, name string, out io.Writer) error {
	// The answer comes when the hook's Job has ended.
	hc := *c.http
	if tr, ok := c.http.Transport.(*http.Transport); ok {
		tr = tr.Clone()
		tr.ResponseHeaderTimeout = hook.DefaultDeadline + time.Minute
		hc.Transport = tr
	}
	var resp HookResponse
	err := c.doWith(ctx, &hc, http.MethodPost, PathOperation+op+"/hooks/"+name, struct{}{}, &resp)
	if resp.Output != "" {
		_, _ = io.WriteString(out, resp.Output)
	}
	return err
}
