package upgrade

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opengravity/gravity/internal/atomicfile"
	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/install"
	"github.com/opengravity/gravity/internal/nodeagent"
	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/store"
)

// hostGravity is the gravity on root's PATH, which nodes that join later
// copy.
var hostGravity = "/usr/local/bin/gravity"

func newID() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// appConfig is an install config for the app at version, as its hooks
// run: the operation's id, the cluster's masters for the resources image
// (reached with this master's certificates; their pod subnets, which a
// config must have, are this node's: hooks never read them).
func appConfig(stateDir string, n config.Node, info cluster.Info, pkg, version, opID string) install.Config {
	var nodes []install.Node
	for _, m := range n.MasterIPs {
		nodes = append(nodes, install.Node{IP: m.String(), Master: true, PodSubnet: n.NodePodCIDR})
	}
	return install.Config{OperationID: opID, ClusterName: info.Name, AppName: info.App, AppVersion: version, AppPackage: pkg,
		StateDir: stateDir, CloudProvider: info.Provider, Nodes: nodes, PodCIDR: n.PodCIDR, ServiceCIDR: n.ServiceCIDR}
}

// executors registers what runs each phase type of an upgrade.
func executors(o Options, l local, rec record, p *plan.Plan, info cluster.Info) plan.Registry {
	to := appConfig(o.StateDir, l.node, info, p.Data[dataToPackage], p.Data[dataTo], p.OperationID)
	reg := plan.Registry{}
	reg.Register(typeChecks, func(*plan.Phase) (plan.Executor, error) {
		return checks{l: l, force: p.Data[dataForce] == "true", pkg: p.Data[dataToPackage], stateDir: o.StateDir, agents: agentAddrs(p, l.node.Name)}, nil
	})
	reg.Register(typeApp, func(*plan.Phase) (plan.Executor, error) {
		return appUpdate{o: o, l: l, cfg: to, releases: releases(p)}, nil
	})
	src := ""
	if rec.ImageDir != "" { // a rollback of the last upgrade has no image
		src = filepath.Join(rec.ImageDir, "gravity")
	}
	remote := func(ph *plan.Phase) (remoteRun, error) {
		agents, err := l.agents()
		return remoteRun{agents: agents, addr: ph.Data[dataAddr], op: p.OperationID, phase: ph.ID}, err
	}
	reg.Register(typeBinaries, func(ph *plan.Phase) (plan.Executor, error) {
		if ph.Node == l.node.Name {
			return nodeBinaries(o.StateDir, p.OperationID, src, ph.Data[dataDigest]), nil
		}
		r, err := remote(ph)
		return remoteBinaries{remoteRun: r, payload: src}, err
	})
	reg.Register(typeBootstrap, func(ph *plan.Phase) (plan.Executor, error) {
		if ph.Node == l.node.Name {
			return newBootstrap(o.StateDir, ph.Data, "")
		}
		pkgs, err := decodePackages(ph.Data[dataPackages])
		if err != nil {
			return nil, err
		}
		r, err := remote(ph)
		return remoteBootstrap{remoteRun: r, stateDir: o.StateDir, pkgs: pkgs}, err
	})
	reg.Register(typeEtcdBackup, func(ph *plan.Phase) (plan.Executor, error) {
		return etcdBackup{node: l.node, path: filepath.Join(o.StateDir, "local", "update", p.OperationID, "etcd.snapshot")}, nil
	})
	reg.Register(typeDrain, func(ph *plan.Phase) (plan.Executor, error) { return drain{clients: l.clients, node: ph.Node}, nil })
	reg.Register(typeCoreDNS, func(ph *plan.Phase) (plan.Executor, error) {
		return coreDNS{clients: l.clients, image: ph.Data[dataImage], old: ph.Data[dataOldImage]}, nil
	})
	reg.Register(typeUncordon, func(ph *plan.Phase) (plan.Executor, error) { return uncordon{clients: l.clients, node: ph.Node}, nil })
	reg.Register(typeSystem, func(ph *plan.Phase) (plan.Executor, error) {
		if ph.Node == l.node.Name {
			return driverSystem{system: newSystem(o.StateDir, p.OperationID, ph.Data, src, restartHere), clients: l.clients, node: ph.Node}, nil
		}
		r, err := remote(ph)
		sys := newSystem(o.StateDir, p.OperationID, ph.Data, "", nil)
		return remoteSystem{remoteRun: r, clients: l.clients, node: ph.Node, payload: src, to: sys.to, from: sys.from}, err
	})
	return reg
}

// checks: every node Ready (unless forced), every master's registry
// answering, every other node's agent answering (the upgrade needs them
// all once the application is upgraded), the new version's package in
// this master's store.
type checks struct {
	l        local
	force    bool
	pkg      string
	stateDir string
	agents   []string
}

// agentAddrs are the addresses of the nodes whose phases of p their
// agents run.
func agentAddrs(p *plan.Plan, self string) []string {
	var out []string
	for _, ph := range p.Leaves() {
		if ph.Data[dataAddr] != "" && ph.Node != self && !slices.Contains(out, ph.Data[dataAddr]) {
			out = append(out, ph.Data[dataAddr])
		}
	}
	return out
}

func (c checks) Execute(ctx context.Context) error {
	st, err := store.Open(install.Config{StateDir: c.stateDir}.PackagesDir())
	if err != nil {
		return err
	}
	if _, err := st.Descriptor(c.pkg); err != nil {
		return fmt.Errorf("package %s is not in the cluster's store (run ./upload): %w", c.pkg, err)
	}
	status, err := cluster.ReadStatus(ctx, c.l.clients, cluster.Probes{Node: cluster.KubeletProbe})
	if err != nil {
		return err
	}
	var problems []string
	for _, n := range status.Nodes {
		if n.Status != "healthy" {
			problems = append(problems, fmt.Sprintf("%s (%s): %s", n.Name, n.Address, strings.Join(n.Problems, "; ")))
		}
	}
	if len(problems) > 0 && !c.force {
		return fmt.Errorf("degraded nodes: %s", strings.Join(problems, ", "))
	}
	for _, m := range c.l.node.MasterIPs {
		n := c.l.node
		n.IP = m
		if err := install.RegistryHealthy(ctx, n); err != nil {
			return err
		}
	}
	if len(c.agents) == 0 {
		return nil
	}
	agents, err := c.l.agents()
	if err != nil {
		return err
	}
	for _, addr := range c.agents {
		if err := agents.Healthy(ctx, addr); err != nil {
			return err
		}
	}
	return nil
}

// Rollback: checking changes nothing.
func (checks) Rollback(context.Context) error { return nil }

// appUpdate runs the new version's update hooks. Its rollback runs the
// new version's rollback hook; without one, it returns every Helm
// release the upgrade changed to the revision it had (Helm keeps the
// manifests of each), then runs postRollback.
type appUpdate struct {
	o        Options
	l        local
	cfg      install.Config
	releases map[string]string
}

func (a appUpdate) Execute(ctx context.Context) error {
	for _, h := range updateHooks {
		if _, err := install.RunAppHook(ctx, a.cfg, h, a.o.Out); err != nil {
			return fmt.Errorf("%s hook: %w", h, err)
		}
	}
	return nil
}

func (a appUpdate) Rollback(ctx context.Context) error {
	ran, err := install.RunAppHook(ctx, a.cfg, "rollback", a.o.Out)
	if err != nil {
		return fmt.Errorf("rollback hook: %w", err)
	}
	if !ran {
		if err := a.rollbackReleases(ctx); err != nil {
			return err
		}
	}
	if _, err := install.RunAppHook(ctx, a.cfg, "postRollback", a.o.Out); err != nil {
		return fmt.Errorf("postRollback hook: %w", err)
	}
	return nil
}

func (a appUpdate) rollbackReleases(ctx context.Context) error {
	now, err := deployedReleases(ctx, a.l.clients)
	if err != nil {
		return err
	}
	for r, rev := range a.releases {
		before, err := strconv.Atoi(rev)
		if err != nil {
			return fmt.Errorf("release %s: revision %q: %w", r, rev, err)
		}
		if now[r] == before {
			continue
		}
		ns, name, _ := strings.Cut(r, "/")
		fmt.Fprintf(a.o.Out, "rolling back release %s in namespace %s to revision %d\n", name, ns, before)
		cmd := []string{"helm", "rollback", name, strconv.Itoa(before), "--namespace", ns, "--wait"}
		if err := install.RunToolsJob(ctx, a.cfg, "rollback", cmd, a.o.Out); err != nil {
			return fmt.Errorf("rolling back release %s: %w", r, err)
		}
	}
	return nil
}

// deployedReleases are the deployed revisions of the cluster's Helm
// releases, "namespace/name" → revision, from Helm's own records (Secrets
// labelled owner=helm, status=deployed).
func deployedReleases(ctx context.Context, c cluster.Clients) (map[string]int, error) {
	list, err := c.Kube.Secrets("").List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,status=deployed"})
	if err != nil {
		return nil, fmt.Errorf("listing Helm releases: %w", err)
	}
	out := map[string]int{}
	for _, s := range list.Items {
		v, err := strconv.Atoi(s.Labels["version"])
		if err != nil || s.Labels["name"] == "" {
			continue // not a release record
		}
		key := s.Namespace + "/" + s.Labels["name"]
		out[key] = max(out[key], v)
	}
	return out, nil
}

// NodeExecutors are the phases of an upgrade that a node's agent runs for
// the master driving it: the new gravity binary, which comes as the
// request's payload; the new packages and runtime (their blobs as the
// payload); the switch of the node's runtime, restarted by a process of
// its own since the agent is one of the components it restarts.
func NodeExecutors(stateDir string) nodeagent.Registry {
	return nodeagent.Registry{
		typeBinaries: func(p *plan.Plan, ph *plan.Phase, payload string) (plan.Executor, error) {
			return nodeBinaries(stateDir, p.OperationID, payload, ph.Data[dataDigest]), nil
		},
		typeBootstrap: func(p *plan.Plan, ph *plan.Phase, payload string) (plan.Executor, error) {
			return newBootstrap(stateDir, ph.Data, payload)
		},
		typeSystem: func(p *plan.Plan, ph *plan.Phase, payload string) (plan.Executor, error) {
			return newSystem(stateDir, p.OperationID, ph.Data, payload, restartDetached), nil
		},
	}
}

// remoteRun runs a phase through the agent of its node.
type remoteRun struct {
	agents    *nodeagent.Client
	addr      string
	op, phase string
}

func (r remoteRun) Rollback(ctx context.Context) error {
	return r.agents.Run(ctx, r.addr, r.op, r.phase, true, nil)
}

// remoteBinaries sends the node the new gravity binary.
type remoteBinaries struct {
	remoteRun
	payload string
}

func (r remoteBinaries) Execute(ctx context.Context) error {
	f, err := r.openGravity(r.payload)
	if err != nil {
		return err
	}
	defer f.Close()
	return r.agents.Run(ctx, r.addr, r.op, r.phase, false, f)
}

// openGravity opens the new gravity binary a phase sends its node; a
// rollback of the last upgrade has none (its image is gone).
func (r remoteRun) openGravity(path string) (*os.File, error) {
	if path == "" {
		return nil, fmt.Errorf("phase %s: no new gravity binary to send (the upgrade's image is gone)", r.phase)
	}
	return os.Open(path)
}

// nodeBinaries replaces this node's gravity with src, which must have
// digest, keeping the old one under the operation's directory.
func nodeBinaries(stateDir, op, src, digest string) binaries {
	return binaries{src: src, dst: hostGravity, digest: digest,
		backup: filepath.Join(stateDir, "local", "update", op, "gravity")}
}

// binaries installs the new gravity where nodes that join copy it from,
// keeping the old one for a rollback.
type binaries struct{ src, dst, backup, digest string }

func (b binaries) Execute(context.Context) error {
	if b.src == "" {
		return errors.New("no new gravity binary was given")
	}
	if err := checkDigest(b.src, b.digest); err != nil {
		return err
	}
	if _, err := os.Stat(b.backup); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(b.backup), 0o700); err != nil {
			return err
		}
		if err := atomicfile.CopyFile(b.dst, b.backup, 0o755); err != nil {
			return fmt.Errorf("keeping the old gravity: %w", err)
		}
	} else if err != nil {
		return err
	}
	return atomicfile.CopyFile(b.src, b.dst, 0o755)
}

// fileDigest is path's "sha256:…".
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// checkDigest refuses a file whose digest is not digest; an empty digest
// (a plan of an earlier version) checks nothing.
func checkDigest(path, digest string) error {
	if digest == "" {
		return nil
	}
	got, err := fileDigest(path)
	if err != nil {
		return err
	}
	if got != digest {
		return fmt.Errorf("the gravity binary given is %s, not the upgrade's %s", got, digest)
	}
	return nil
}

func (b binaries) Rollback(context.Context) error {
	if _, err := os.Stat(b.backup); errors.Is(err, fs.ErrNotExist) {
		return nil // never replaced
	}
	return atomicfile.CopyFile(b.backup, b.dst, 0o755)
}
