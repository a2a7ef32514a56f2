package install

import (
	"fmt"

	"github.com/opengravity/gravity/internal/plan"
)

// System apps the installer installs from the base image, each with its
// own install hook. Gravity also shipped logging-app, monitoring-app,
// tiller-app and site (the control panel); they are not built yet.
const dnsApp = "dns-app"

// Phase ids (Gravity's where the step exists).
const (
	phaseInit      = "/init"
	phaseChecks    = "/checks"
	phaseConfigure = "/configure"
	phaseBootstrap = "/bootstrap"
	phasePull      = "/pull"
	phaseMasters   = "/masters"
	phaseWait      = "/wait"
	phaseRBAC      = "/rbac"
	phaseCoreDNS   = "/coredns"
	phaseExport    = "/export"
	phaseHealth    = "/health"
	phaseRuntime   = "/runtime"
	phaseApp       = "/app"
)

// Phase types of the install: what runs a leaf, whatever its id. Node
// types run on the phase's node through its agent; the rest in the
// installer.
const (
	typeInit      = "init"
	typeChecks    = "checks"
	typeConfigure = "configure"
	typeBootstrap = "bootstrap"
	typePull      = "pull"
	typeRuntime   = "runtime"
	typeWait      = "wait"
	typeRBAC      = "rbac"
	typeCoreDNS   = "coredns"
	typeExport    = "export"
	typeHealth    = "health"
	typeApp       = "app"
)

// nodeTypes are the types that run on a node, not in the installer.
var nodeTypes = []string{typeBootstrap, typePull, typeRuntime, typeExport}

// dataApp is the phase data key naming the app an app phase installs.
const dataApp = "app"

// Plan lays out the install of c as Gravity did: operation set-up and
// checks, per-node bootstrap and packages, the runtime on masters, then
// cluster-wide steps, system apps and finally the user's app.
func Plan(c Config) *plan.Plan {
	leaf := func(typ, id, desc, node string, requires ...string) *plan.Phase {
		return &plan.Phase{ID: id, Type: typ, Description: desc, Node: node, Requires: requires, State: plan.Unstarted}
	}
	app := func(id, name, desc string, requires ...string) *plan.Phase {
		ph := leaf(typeApp, id+"/"+name, desc, "", requires...)
		ph.Data = map[string]string{dataApp: name}
		return ph
	}
	group := func(id, desc string, children ...*plan.Phase) *plan.Phase {
		return &plan.Phase{ID: id, Description: desc, State: plan.Unstarted, Phases: children}
	}
	var bootstrap, pull, masters, export []*plan.Phase
	for _, n := range c.Nodes {
		kind := "node"
		if n.Master {
			kind = "master node"
		}
		bootstrap = append(bootstrap, leaf(typeBootstrap, phaseBootstrap+"/"+n.IP, fmt.Sprintf("Bootstrap %s %s", kind, n.IP), n.IP, phaseConfigure))
		pull = append(pull, leaf(typePull, phasePull+"/"+n.IP, fmt.Sprintf("Pull packages on %s %s", kind, n.IP), n.IP, phaseBootstrap+"/"+n.IP))
		if n.Master {
			masters = append(masters, group(phaseMasters+"/"+n.IP, "Install system software on master node "+n.IP,
				leaf(typeRuntime, phaseMasters+"/"+n.IP+"/runtime", "Start the Kubernetes runtime on master node "+n.IP, n.IP, phasePull+"/"+n.IP)))
			export = append(export, leaf(typeExport, phaseExport+"/"+n.IP, "Populate Docker registry on master node "+n.IP, n.IP))
		}
	}
	p := &plan.Plan{Version: plan.SchemaVersion, OperationID: c.OperationID, OperationType: "install", ClusterName: c.ClusterName, Created: c.Created,
		Phases: []*plan.Phase{
			leaf(typeInit, phaseInit, "Initialize the operation: copy the cluster image into the state directory", ""),
			leaf(typeChecks, phaseChecks, "Execute preflight checks", "", phaseInit),
			leaf(typeConfigure, phaseConfigure, "Configure packages for all nodes: cluster CA and secrets", "", phaseChecks),
			group(phaseBootstrap, "Bootstrap all nodes", bootstrap...),
			group(phasePull, "Pull configured packages", pull...),
			group(phaseMasters, "Install system software on master nodes", masters...),
			leaf(typeWait, phaseWait, "Wait for Kubernetes to become available", "", phaseMasters),
			leaf(typeRBAC, phaseRBAC, "Bootstrap Kubernetes roles and cluster state", "", phaseWait),
			leaf(typeCoreDNS, phaseCoreDNS, "Configure CoreDNS", "", phaseRBAC),
			group(phaseExport, "Populate Docker registry on master nodes", export...),
			leaf(typeHealth, phaseHealth, "Wait for cluster to pass health checks", "", phaseExport),
			group(phaseRuntime, "Install system applications",
				app(phaseRuntime, dnsApp, "Install system application "+dnsApp+":"+c.BaseVersion, phaseHealth)),
			group(phaseApp, "Install user application",
				app(phaseApp, c.AppName, fmt.Sprintf("Install application %s:%s", c.AppName, c.AppVersion), phaseRuntime)),
		}}
	return p
}
