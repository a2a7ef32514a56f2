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
	typeChecks     = "update-checks"
	typeApp        = "update-app"
	typeBinaries   = "update-binaries"
	typeBootstrap  = "update-bootstrap"
	typeEtcdBackup = "update-etcd-backup"
	typeDrain      = "update-drain"
	typeSystem     = "update-system"
	typeUncordon   = "update-uncordon"
	typeCoreDNS    = "update-coredns"
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
	// The runtime (base image) versions, when the upgrade changes it.
	dataFromRuntime = "fromRuntime"
	dataToRuntime   = "toRuntime"
)

// Keys of a node phase's Data: the node's address (its agent's), and
// the new gravity's digest, which the node checks what it is sent against;
// a bootstrap's packages; a system upgrade's runtime versions, the gravity
// versions its runtime runs before and after, and the sandbox image; the
// CoreDNS images of a system application update.
const (
	dataAddr       = "addr"
	dataDigest     = "digest"
	dataPackages   = "packages"
	dataRuntime    = "runtime"
	dataOldRuntime = "oldRuntime"
	dataVersion    = "version"
	dataOldVersion = "oldVersion"
	dataPause      = "pause"
	dataImage      = "image"
	dataOldImage   = "oldImage"
)

// Node is a node of the cluster as an upgrade plans for it.
type Node struct {
	Name, Addr string
	Master     bool
}

// Spec is what an upgrade plan is made from.
type Spec struct {
	OperationID, ClusterName string
	App, From, To            string // app name, installed and new version
	FromPackage, ToPackage   string // "gravitational.io/cluster-image:0.0.2"
	// Node is the master that drives the upgrade; Nodes every node of
	// the cluster (the driver included), masters first, whose gravity
	// binaries are replaced, the driver's first, the others through their
	// agents.
	Node  string
	Nodes []Node
	// Gravity is the new gravity binary's digest ("sha256:…"), Version
	// its version and OldVersion the running one's.
	Gravity, Version, OldVersion string
	// FromRuntime and ToRuntime are the runtime versions (of the base
	// images); when they differ, every node is switched to the new one,
	// one at a time, and Pause is the new sandbox image.
	FromRuntime, ToRuntime, Pause string
	// MasterPackages are the new image's packages the other masters get
	// (they serve joins and run node hooks from their own stores);
	// RuntimePackage the new runtime, which every node gets when the
	// runtime changes.
	MasterPackages []Package
	RuntimePackage Package
	// CoreDNS is the new base image's CoreDNS image when it is not the one
	// the cluster runs (OldCoreDNS): a system application to update.
	CoreDNS, OldCoreDNS string
	// Hooks are the new version's hooks among the update ones
	// (preUpdate, update, postUpdate): a phase with nothing to do is not
	// planned.
	Hooks []string
	// Releases: "namespace/name" → deployed revision before the upgrade.
	Releases map[string]int
	Force    bool
	Created  time.Time
}

// RuntimeChanges tells whether the upgrade switches the nodes' runtime.
func (s Spec) RuntimeChanges() bool { return s.ToRuntime != "" && s.ToRuntime != s.FromRuntime }

// updateHooks are the hooks an app phase runs, in order.
var updateHooks = []string{"preUpdate", "update", "postUpdate"}

// Plan lays out an upgrade, in Gravity's order: checks; the new packages
// on every node that needs them (bootstrap); when the runtime changes, an
// etcd snapshot, then every master and every worker switched to the new
// runtime one at a time (drained, switched with the new gravity and
// restarted, uncordoned); the system applications (CoreDNS; the cluster
// service is a runtime component, switched with each master); the
// application's update hooks; and when the
// runtime did not change, the new gravity binary on every node. A phase
// with nothing to do is left out.
func Plan(s Spec) *plan.Plan {
	leaf := func(typ, id, desc, node string, requires ...string) *plan.Phase {
		return &plan.Phase{ID: id, Type: typ, Description: desc, Node: node, Requires: requires, State: plan.Unstarted}
	}
	group := func(id, desc string) *plan.Phase {
		return &plan.Phase{ID: id, Description: desc, State: plan.Unstarted}
	}
	phases := []*plan.Phase{leaf(typeChecks, "/checks", "Verify that the cluster is healthy and has the new images", "")}
	last := "/checks"
	nodes := driverFirst(s.Node, s.Nodes)
	runtime := s.RuntimeChanges()

	boot := group("/bootstrap", "Put the new version's packages on the nodes")
	for _, n := range nodes {
		var pkgs []Package
		if n.Master && n.Name != s.Node {
			pkgs = append(pkgs, s.MasterPackages...)
		}
		if runtime && n.Name != s.Node {
			pkgs = append(pkgs, s.RuntimePackage)
		}
		if len(pkgs) == 0 && !(runtime && n.Name == s.Node) {
			continue
		}
		desc := fmt.Sprintf("Put the packages of %s %s on node %s", s.App, s.To, n.Name)
		if runtime {
			desc = fmt.Sprintf("Put the packages of %s %s and runtime %s on node %s", s.App, s.To, s.ToRuntime, n.Name)
		}
		ph := leaf(typeBootstrap, "/bootstrap/"+n.Name, desc, n.Name, last)
		ph.Data = map[string]string{dataAddr: n.Addr, dataPackages: encodePackages(pkgs)}
		if runtime {
			ph.Data[dataRuntime] = s.ToRuntime
		}
		boot.Phases = append(boot.Phases, ph)
	}
	if len(boot.Phases) > 0 {
		phases = append(phases, boot)
		last = "/bootstrap"
	}

	if runtime {
		phases = append(phases, leaf(typeEtcdBackup, "/etcd-backup", "Back up etcd before the runtime changes", s.Node, last))
		last = "/etcd-backup"
		// Draining one node of a single-node cluster has nowhere to move
		// its pods to: they keep running across the switch instead.
		drain := len(nodes) > 1
		for _, master := range []bool{true, false} {
			id, what := "/masters", "master"
			if !master {
				id, what = "/nodes", "node"
			}
			g := group(id, fmt.Sprintf("Switch every %s to runtime %s, one at a time", what, s.ToRuntime))
			for _, n := range nodes {
				if n.Master != master {
					continue
				}
				base := id + "/" + n.Name
				ng := group(base, fmt.Sprintf("Switch %s %s to runtime %s", what, n.Name, s.ToRuntime))
				if drain {
					ng.Phases = append(ng.Phases, leaf(typeDrain, base+"/drain", "Drain node "+n.Name, n.Name, last))
				}
				sys := leaf(typeSystem, base+"/system-upgrade",
					fmt.Sprintf("Switch node %s to runtime %s and the gravity of %s %s, and restart it", n.Name, s.ToRuntime, s.App, s.To), n.Name, last)
				sys.Data = map[string]string{dataAddr: n.Addr, dataDigest: s.Gravity, dataRuntime: s.ToRuntime, dataOldRuntime: s.FromRuntime,
					dataVersion: s.Version, dataOldVersion: s.OldVersion, dataPause: s.Pause}
				ng.Phases = append(ng.Phases, sys)
				if drain {
					ng.Phases = append(ng.Phases, leaf(typeUncordon, base+"/uncordon", "Uncordon node "+n.Name, n.Name, base+"/system-upgrade"))
				}
				g.Phases = append(g.Phases, ng)
				last = base
			}
			if len(g.Phases) > 0 {
				phases = append(phases, g)
				last = id
			}
		}
	}

	if s.CoreDNS != "" && s.CoreDNS != s.OldCoreDNS {
		ph := leaf(typeCoreDNS, "/coredns", "Update system application CoreDNS to "+s.CoreDNS, "", last)
		ph.Data = map[string]string{dataImage: s.CoreDNS, dataOldImage: s.OldCoreDNS}
		phases = append(phases, ph)
		last = "/coredns"
	}

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
	if !runtime {
		// The system upgrade puts the new gravity in place with the
		// runtime; without one, it is a phase of its own.
		g := group("/gravity", "Install the new gravity binary on every node")
		for _, n := range nodes {
			ph := leaf(typeBinaries, "/gravity/"+n.Name,
				fmt.Sprintf("Install the gravity binary of %s %s on node %s", s.App, s.To, n.Name), n.Name, last)
			ph.Data = map[string]string{dataAddr: n.Addr, dataDigest: s.Gravity}
			g.Phases = append(g.Phases, ph)
		}
		phases = append(phases, g)
	}
	data := map[string]string{dataApp: s.App, dataFrom: s.From, dataTo: s.To, dataFromPackage: s.FromPackage, dataToPackage: s.ToPackage,
		dataDriver: s.Node}
	desc := fmt.Sprintf("Upgrade application %s from %s to %s", s.App, s.From, s.To)
	if runtime {
		data[dataFromRuntime], data[dataToRuntime] = s.FromRuntime, s.ToRuntime
		desc += fmt.Sprintf(" and the runtime from %s to %s", s.FromRuntime, s.ToRuntime)
	}
	if s.Force {
		data[dataForce] = "true"
	}
	for r, rev := range s.Releases {
		data[releasePrefix+r] = fmt.Sprint(rev)
	}
	return &plan.Plan{Version: plan.SchemaVersion, OperationID: s.OperationID, OperationType: OperationType,
		ClusterName: s.ClusterName, Created: s.Created, Data: data, Phases: phases, Description: desc}
}

// driverFirst is nodes with the driver first (added when missing: it
// needs no address), the others in their order.
func driverFirst(driver string, nodes []Node) []Node {
	nodes = slices.Clone(nodes)
	if !slices.ContainsFunc(nodes, func(n Node) bool { return n.Name == driver }) {
		nodes = append(nodes, Node{Name: driver, Master: true})
	}
	slices.SortStableFunc(nodes, func(a, b Node) int {
		switch {
		case a.Name == driver && b.Name != driver:
			return -1
		case b.Name == driver && a.Name != driver:
			return 1
		}
		return 0
	})
	return nodes
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
