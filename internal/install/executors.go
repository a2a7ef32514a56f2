package install

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/opengravity/gravity/internal/install/agent"
	"github.com/opengravity/gravity/internal/install/hook"
	"github.com/opengravity/gravity/internal/plan"
)

// executors registers what runs each phase type of the install: node
// types go to the phase's node through its agent, the rest run in the
// installer.
func executors(c Config, agents *agent.Server, imageDir string, out, log io.Writer) plan.Registry {
	s := step{cfg: c, imageDir: imageDir, out: out}
	r := plan.Registry{}
	installer := func(f func() plan.Executor) plan.Factory {
		return func(*plan.Phase) (plan.Executor, error) { return f(), nil }
	}
	r.Register(typeInit, installer(func() plan.Executor { return initStep{s} }))
	r.Register(typeConfigure, installer(func() plan.Executor { return configureStep{s} }))
	r.Register(typeWait, installer(func() plan.Executor { return waitStep{s} }))
	r.Register(typeRBAC, installer(func() plan.Executor { return rbacStep{s} }))
	r.Register(typeCoreDNS, installer(func() plan.Executor { return corednsStep{s} }))
	r.Register(typeHealth, installer(func() plan.Executor { return healthStep{s} }))
	r.Register(typeChecks, func(ph *plan.Phase) (plan.Executor, error) {
		return allNodes{s: s, ph: ph, agents: agents, log: log}, nil
	})
	r.Register(typeApp, func(ph *plan.Phase) (plan.Executor, error) {
		name := ph.Data[dataApp]
		if name == "" {
			return nil, fmt.Errorf("phase %s names no app", ph.ID)
		}
		return appStep{step: s, app: name}, nil
	})
	for _, t := range nodeTypes {
		r.Register(t, func(ph *plan.Phase) (plan.Executor, error) {
			if ph.Node == "" {
				return nil, fmt.Errorf("phase %s of type %s names no node", ph.ID, ph.Type)
			}
			return onNode{s: s, ph: ph, node: ph.Node, agents: agents, log: log}, nil
		})
	}
	return r
}

// onNode runs a node phase through the node's agent, as `gravity install
// phase`, sending the operation config (and for bootstrap the CA set).
type onNode struct {
	s      step
	ph     *plan.Phase
	node   string
	agents *agent.Server
	log    io.Writer
}

func (o onNode) Execute(ctx context.Context) error  { return o.run(ctx, false) }
func (o onNode) Rollback(ctx context.Context) error { return o.run(ctx, true) }

func (o onNode) run(ctx context.Context, rollback bool) error {
	peer := o.agents.Peer(o.node)
	if peer == nil {
		return fmt.Errorf("the agent of node %s is not connected", o.node)
	}
	in := PhaseInput{Config: o.s.cfg, Node: o.node, Type: o.ph.Type}
	if o.ph.Type == typeBootstrap && !rollback {
		files, err := bootstrapFiles(o.s.cfg, o.node)
		if err != nil {
			return err
		}
		in.Files = files
	}
	stdin, err := json.Marshal(in)
	if err != nil {
		return err
	}
	args := []string{agent.SelfExecutable, "install", "phase", o.ph.ID}
	if rollback {
		args = append(args, "--rollback")
	}
	tail := hook.NewTail(4096)
	w := io.MultiWriter(o.log, tail)
	code, err := peer.Run(ctx, agent.Command{Args: args, Stdin: stdin}, w, w)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("on node %s (exit code %d):\n%s", o.node, code, tail.Last(4096))
	}
	return nil
}

// bootstrapFiles is the CA set the bootstrap of node sends it. The CA
// keys go to a master only, over the agent's mutual TLS: install makes the
// first master, and every other node comes through `gravity join`, which
// sends a worker certificates for keys it made itself and no CA key.
func bootstrapFiles(c Config, node string) (map[string][]byte, error) {
	nd, err := c.Node(node)
	if err != nil {
		return nil, err
	}
	if !nd.Master {
		return nil, fmt.Errorf("bootstrap of %s: install sends the CA set to masters only; a worker joins with `gravity join`", node)
	}
	files, err := caFiles(c.PKIDir())
	if err != nil {
		return nil, fmt.Errorf("reading the cluster CA: %w", err)
	}
	return files, nil
}

// allNodes runs a phase on every node's agent, in turn.
type allNodes struct {
	s      step
	ph     *plan.Phase
	agents *agent.Server
	log    io.Writer
}

func (a allNodes) each(ctx context.Context, rollback bool) error {
	for _, n := range a.s.cfg.Nodes {
		o := onNode{s: a.s, ph: a.ph, node: n.IP, agents: a.agents, log: a.log}
		if err := o.run(ctx, rollback); err != nil {
			return err
		}
	}
	return nil
}

func (a allNodes) Execute(ctx context.Context) error  { return a.each(ctx, false) }
func (a allNodes) Rollback(ctx context.Context) error { return a.each(ctx, true) }
