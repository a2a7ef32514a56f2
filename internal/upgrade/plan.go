// Package upgrade is `./upload` and `gravity upgrade`: a new cluster image
// imported into the running cluster (its packages into this master's
// package store, its images into every master's registry), then the update
// operation, planned here (Plan is pure), run by the operation engine
// (package plan) with the executors this package registers by phase type,
// and kept in the cluster as an Operation. The new image's gravity drives
// it: it knows the new version's phases. The operations lease of the join
// and remove operations admits it, so no other operation runs beside it.
package upgrade

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opengravity/gravity/internal/plan"
)

// OperationType is an upgrade's operation type, as Gravity named it.
const OperationType = "update"

// Phase types of an upgrade.
const (
	typeChecks   = "update-checks"
	typeApp      = "update-app"
	typeBinaries = "update-binaries"
)

// Keys of the plan's Data: the versions, and the deployed revision of every
// Helm release before the upgrade (what a rollback returns to when the app
// has no rollback hook of its own).
const (
	dataApp         = "app"
	dataFrom        = "from"
	dataTo          = "to"
	dataFromPackage = "fromPackage"
	dataToPackage   = "toPackage"
	dataForce       = "force"
	dataDriver      = "driver"   // the master that drives it, which keeps what it replaced
	releasePrefix   = "release/" // release/<namespace>/<name> → revision
)

// Keys of a binaries phase's Data: the node's address (its agent's), and
// the new gravity's digest, which the node checks what it is sent against.
const (
	dataAddr   = "addr"
	dataDigest = "digest"
)

// Node is a node of the cluster as an upgrade plans for it.
type Node struct {
	Name, Addr string
}

// Spec is what an upgrade plan is made from.
type Spec struct {
	OperationID, ClusterName string
	App, From, To            string // app name, installed and new version
	FromPackage, ToPackage   string // "gravitational.io/cluster-image:0.0.2"
	// Node is the master that drives the upgrade; Nodes every node of
	// the cluster (the driver included), whose gravity binaries are
	// replaced, the driver's first, the others through their agents.
	Node  string
	Nodes []Node
	// Gravity is the new gravity binary's digest ("sha256:…").
	Gravity string
	// Hooks are the new version's hooks among the update ones
	// (preUpdate, update, postUpdate): a phase with nothing to do is not
	// planned.
	Hooks []string
	// Releases: "namespace/name" → deployed revision before the upgrade.
	Releases map[string]int
	Force    bool
	Created  time.Time
}

// updateHooks are the hooks an app phase runs, in order.
var updateHooks = []string{"preUpdate", "update", "postUpdate"}

// Plan lays out an upgrade: checks, the application's update hooks, then
// the new gravity binary on every node, the driver's first.
func Plan(s Spec) *plan.Plan {
	leaf := func(typ, id, desc, node string, requires ...string) *plan.Phase {
		return &plan.Phase{ID: id, Type: typ, Description: desc, Node: node, Requires: requires, State: plan.Unstarted}
	}
	phases := []*plan.Phase{leaf(typeChecks, "/checks", "Verify that the cluster is healthy and has the new images", "")}
	last := "/checks"
	var hooks []string
	for _, h := range updateHooks {
		if slices.Contains(s.Hooks, h) {
			hooks = append(hooks, h)
		}
	}
	if len(hooks) > 0 {
		id := "/app/" + s.App
		phases = append(phases, &plan.Phase{ID: "/app", Description: "Update application", State: plan.Unstarted, Phases: []*plan.Phase{
			leaf(typeApp, id, fmt.Sprintf("Update application %s from %s to %s (%s hooks)", s.App, s.From, s.To, strings.Join(hooks, ", ")), "", last)}})
		last = "/app"
	}
	nodes := slices.Clone(s.Nodes)
	if !slices.ContainsFunc(nodes, func(n Node) bool { return n.Name == s.Node }) {
		nodes = append(nodes, Node{Name: s.Node}) // the driver needs no address
	}
	slices.SortStableFunc(nodes, func(a, b Node) int {
		switch {
		case a.Name == s.Node && b.Name != s.Node:
			return -1
		case b.Name == s.Node && a.Name != s.Node:
			return 1
		}
		return 0
	})
	group := &plan.Phase{ID: "/gravity", Description: "Install the new gravity binary on every node", State: plan.Unstarted}
	for _, n := range nodes {
		ph := leaf(typeBinaries, "/gravity/"+n.Name,
			fmt.Sprintf("Install the gravity binary of %s %s on node %s", s.App, s.To, n.Name), n.Name, last)
		ph.Data = map[string]string{dataAddr: n.Addr, dataDigest: s.Gravity}
		group.Phases = append(group.Phases, ph)
	}
	phases = append(phases, group)
	data := map[string]string{dataApp: s.App, dataFrom: s.From, dataTo: s.To, dataFromPackage: s.FromPackage, dataToPackage: s.ToPackage,
		dataDriver: s.Node}
	if s.Force {
		data[dataForce] = "true"
	}
	for r, rev := range s.Releases {
		data[releasePrefix+r] = fmt.Sprint(rev)
	}
	return &plan.Plan{Version: plan.SchemaVersion, OperationID: s.OperationID, OperationType: OperationType,
		ClusterName: s.ClusterName, Created: s.Created, Data: data, Phases: phases,
		Description: fmt.Sprintf("Upgrade application %s from %s to %s", s.App, s.From, s.To)}
}

// releases are the Helm releases recorded in p: "namespace/name" → revision.
func releases(p *plan.Plan) map[string]string {
	out := map[string]string{}
	for k, v := range p.Data {
		if r, ok := strings.CutPrefix(k, releasePrefix); ok {
			out[r] = v
		}
	}
	return out
}
