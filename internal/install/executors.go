package install

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/opengravity/gravity/internal/install/agent"
	"github.com/opengravity/gravity/internal/install/plan"
)

// executors maps each phase of c's plan to what runs it: node phases go
// to the node's install agent, the rest run in the installer.
func executors(c Config, agents *agent.Server, imageDir string, out, log io.Writer) plan.Executors {
	s := step{cfg: c, imageDir: imageDir, out: out}
	return func(ph *plan.Phase) (plan.Executor, error) {
		id := ph.ID
		switch {
		case id == phaseInit:
			return initStep{s}, nil
		case id == phaseConfigure:
			return configureStep{s}, nil
		case id == phaseChecks:
			return allNodes{s: s, id: id, agents: agents, log: log}, nil
		case ph.Node != "":
			return onNode{s: s, id: id, node: ph.Node, agents: agents, log: log}, nil
		case id == phaseWait:
			return waitStep{s}, nil
		case id == phaseRBAC:
			return rbacStep{s}, nil
		case id == phaseCoreDNS:
			return corednsStep{s}, nil
		case id == phaseHealth:
			return healthStep{s}, nil
		case strings.HasPrefix(id, phaseRuntime+"/"):
			return appStep{step: s, app: strings.TrimPrefix(id, phaseRuntime+"/")}, nil
		case strings.HasPrefix(id, phaseApp+"/"):
			return appStep{step: s, app: strings.TrimPrefix(id, phaseApp+"/")}, nil
		}
		return nil, fmt.Errorf("no executor for phase %s", id)
	}
}

// onNode runs a node phase through the node's agent, as `gravity install
// phase`, sending the operation config (and for bootstrap the CA set).
type onNode struct {
	s      step
	id     string
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
	in := PhaseInput{Config: o.s.cfg, Node: o.node}
	if strings.HasPrefix(o.id, phaseBootstrap+"/") && !rollback {
		files, err := caFiles(o.s.cfg.PKIDir())
		if err != nil {
			return fmt.Errorf("reading the cluster CA: %w", err)
		}
		in.Files = files
	}
	stdin, err := json.Marshal(in)
	if err != nil {
		return err
	}
	args := []string{agent.SelfExecutable, "install", "phase", o.id}
	if rollback {
		args = append(args, "--rollback")
	}
	tail := &tailBuffer{max: 4096}
	w := io.MultiWriter(o.log, tail)
	code, err := peer.Run(ctx, agent.Command{Args: args, Stdin: stdin}, w, w)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("on node %s (exit code %d):\n%s", o.node, code, strings.TrimSpace(tail.String()))
	}
	return nil
}

// allNodes runs a phase on every node's agent, in turn.
type allNodes struct {
	s      step
	id     string
	agents *agent.Server
	log    io.Writer
}

func (a allNodes) each(ctx context.Context, rollback bool) error {
	for _, n := range a.s.cfg.Nodes {
		o := onNode{s: a.s, id: a.id, node: n.IP, agents: a.agents, log: a.log}
		if err := o.run(ctx, rollback); err != nil {
			return err
		}
	}
	return nil
}

func (a allNodes) Execute(ctx context.Context) error  { return a.each(ctx, false) }
func (a allNodes) Rollback(ctx context.Context) error { return a.each(ctx, true) }

// tailBuffer keeps the last max bytes written: the end of a failed
// phase's output goes into its error.
type tailBuffer struct {
	buf bytes.Buffer
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return t.buf.String() }
