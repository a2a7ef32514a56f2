package upgrade

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opengravity/gravity/internal/atomicfile"
	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/install"
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
		return checks{l: l, force: p.Data[dataForce] == "true", pkg: p.Data[dataToPackage], stateDir: o.StateDir}, nil
	})
	reg.Register(typeApp, func(*plan.Phase) (plan.Executor, error) {
		return appUpdate{o: o, l: l, cfg: to, releases: releases(p)}, nil
	})
	reg.Register(typeBinaries, func(ph *plan.Phase) (plan.Executor, error) {
		if ph.Node != l.node.Name {
			return nil, fmt.Errorf("phase %s runs on node %s, not on this one (%s)", ph.ID, ph.Node, l.node.Name)
		}
		return binaries{src: filepath.Join(rec.ImageDir, "gravity"), dst: hostGravity,
			backup: filepath.Join(o.StateDir, "local", "update", p.OperationID, "gravity")}, nil
	})
	return reg
}

// checks: every node Ready (unless forced), every master's registry
// answering, the new version's package in this master's store.
type checks struct {
	l        local
	force    bool
	pkg      string
	stateDir string
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

// binaries installs the new gravity where nodes that join copy it from,
// keeping the old one for a rollback.
type binaries struct{ src, dst, backup string }

func (b binaries) Execute(context.Context) error {
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

func (b binaries) Rollback(context.Context) error {
	if _, err := os.Stat(b.backup); errors.Is(err, fs.ErrNotExist) {
		return nil // never replaced
	}
	return atomicfile.CopyFile(b.backup, b.dst, 0o755)
}
