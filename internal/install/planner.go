package install

import (
	"fmt"

	"github.com/opengravity/gravity/internal/install/plan"
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

// Plan lays out the install of c as Gravity did: operation set-up and
// checks, per-node bootstrap and packages, the runtime on masters, then
// cluster-wide steps, system apps and finally the user's app.
func Plan(c Config) *plan.Plan {
	leaf := func(id, desc, node string, requires ...string) *plan.Phase {
		return &plan.Phase{ID: id, Description: desc, Node: node, Requires: requires, State: plan.Unstarted}
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
		bootstrap = append(bootstrap, leaf(phaseBootstrap+"/"+n.IP, fmt.Sprintf("Bootstrap %s %s", kind, n.IP), n.IP, phaseConfigure))
		pull = append(pull, leaf(phasePull+"/"+n.IP, fmt.Sprintf("Pull packages on %s %s", kind, n.IP), n.IP, phaseBootstrap+"/"+n.IP))
		if n.Master {
			masters = append(masters, group(phaseMasters+"/"+n.IP, "Install system software on master node "+n.IP,
				leaf(phaseMasters+"/"+n.IP+"/runtime", "Start the Kubernetes runtime on master node "+n.IP, n.IP, phasePull+"/"+n.IP)))
			export = append(export, leaf(phaseExport+"/"+n.IP, "Populate Docker registry on master node "+n.IP, n.IP))
		}
	}
	p := &plan.Plan{OperationID: c.OperationID, OperationType: "install", ClusterName: c.ClusterName, Created: c.Created,
		Phases: []*plan.Phase{
			leaf(phaseInit, "Initialize the operation: copy the cluster image into the state directory", ""),
			leaf(phaseChecks, "Execute preflight checks", "", phaseInit),
			leaf(phaseConfigure, "Configure packages for all nodes: cluster CA and secrets", "", phaseChecks),
			group(phaseBootstrap, "Bootstrap all nodes", bootstrap...),
			group(phasePull, "Pull configured packages", pull...),
			group(phaseMasters, "Install system software on master nodes", masters...),
			leaf(phaseWait, "Wait for Kubernetes to become available", "", phaseMasters),
			leaf(phaseRBAC, "Bootstrap Kubernetes roles and cluster state", "", phaseWait),
			leaf(phaseCoreDNS, "Configure CoreDNS", "", phaseRBAC),
			group(phaseExport, "Populate Docker registry on master nodes", export...),
			leaf(phaseHealth, "Wait for cluster to pass health checks", "", phaseExport),
			group(phaseRuntime, "Install system applications",
				leaf(phaseRuntime+"/"+dnsApp, "Install system application "+dnsApp+":"+c.BaseVersion, "", phaseHealth)),
			group(phaseApp, "Install user application",
				leaf(phaseApp+"/"+c.AppName, fmt.Sprintf("Install application %s:%s", c.AppName, c.AppVersion), "", phaseRuntime)),
		}}
	return p
}
