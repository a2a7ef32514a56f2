package upgrade

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opengravity/gravity/internal/atomicfile"
	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/clusterservice"
	"github.com/opengravity/gravity/internal/nodeagent"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/runtime/node"
	"github.com/opengravity/gravity/internal/runtime/supervisor"
)

// How long a node may take: to drain (its pods' grace periods, disruption
// budgets), and to come back with every component ready after its
// runtime restarted (etcd catching up, the API server's start).
const (
	drainTimeout  = 10 * time.Minute
	switchTimeout = 5 * time.Minute
)

// restartLog is where a node's detached runtime restart writes.
const restartLog = "/var/log/gravity/runtime-restart.log"

// drain moves a node's pods elsewhere before its runtime switches; its
// rollback makes the node schedulable again.
type drain struct {
	clients cluster.Clients
	node    string
}

func (d drain) Execute(ctx context.Context) error {
	return cluster.Drain(ctx, d.clients, d.node, drainTimeout)
}

func (d drain) Rollback(ctx context.Context) error {
	return cluster.Cordon(ctx, d.clients, d.node, false)
}

// uncordon lets pods onto a switched node again; rolled back, the node is
// cordoned while it switches back.
type uncordon struct {
	clients cluster.Clients
	node    string
}

func (u uncordon) Execute(ctx context.Context) error {
	return cluster.Cordon(ctx, u.clients, u.node, false)
}

func (u uncordon) Rollback(ctx context.Context) error {
	return cluster.Cordon(ctx, u.clients, u.node, true)
}

// target is a runtime a node runs: its binaries and the gravity version of
// its daemon and gravity components ("" checks the binaries only).
type runtimeTarget struct{ binDir, version string }

func (t runtimeTarget) reached(st node.Status) bool {
	return st.State == node.StateRunning && st.BinDir == t.binDir && (t.version == "" || st.Version == t.version)
}

// system switches its node to another runtime version: the new gravity
// binary in place (the old one kept), the node config's bin dir and
// sandbox image switched (the old config kept), then the runtime
// restarted on them, which every component (the gravity ones from the new
// binary) does in the order it starts, pods running on throughout.
// Rolled back, the node gets its old gravity and config back and restarts
// again. Both check the runtime's own status first: a node that already
// runs what is asked is not restarted again.
type system struct {
	stateDir, op string
	gravity      binaries
	to, from     runtimeTarget
	pause        string
	// toolsDir holds the links install put on root's PATH into the
	// runtime's bin dir (kubectl, helm): they follow the switch.
	toolsDir string
	// restart restarts the runtime of the config at path, which is to
	// run t; it may return before the runtime is back.
	restart restarter
}

func (s system) configPath() string { return filepath.Join(s.stateDir, "config", "node.yaml") }
func (s system) backupPath() string {
	return filepath.Join(s.stateDir, "local", "update", s.op, "node.yaml")
}

func (s system) Execute(ctx context.Context) error {
	if err := s.gravity.Execute(ctx); err != nil {
		return err
	}
	raw, err := os.ReadFile(s.configPath())
	if err != nil {
		return err
	}
	if _, err := os.Stat(s.backupPath()); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(s.backupPath()), 0o700); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(s.backupPath(), raw, config.FileMode); err != nil {
			return fmt.Errorf("keeping the node config: %w", err)
		}
	} else if err != nil {
		return err
	}
	n, err := node.ParseNode(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", s.configPath(), err)
	}
	n.BinDir = s.to.binDir
	if s.pause != "" {
		n.PauseImage = s.pause
	}
	data, err := node.FormatNode(n)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(s.configPath(), data, config.FileMode); err != nil {
		return err
	}
	if err := relinkTools(s.toolsDir, s.to.binDir); err != nil {
		return err
	}
	return s.restartFor(ctx, n, s.to)
}

func (s system) Rollback(ctx context.Context) error {
	backup, err := os.ReadFile(s.backupPath())
	if errors.Is(err, fs.ErrNotExist) {
		return s.gravity.Rollback(ctx) // the config was never switched
	}
	if err != nil {
		return err
	}
	if err := s.gravity.Rollback(ctx); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(s.configPath(), backup, config.FileMode); err != nil {
		return err
	}
	if err := relinkTools(s.toolsDir, s.from.binDir); err != nil {
		return err
	}
	n, err := node.ParseNode(backup)
	if err != nil {
		return fmt.Errorf("%s: %w", s.backupPath(), err)
	}
	return s.restartFor(ctx, n, s.from)
}

// linkedTools are the runtime's tools install links onto root's PATH.
var linkedTools = []string{"kubectl", "helm"}

// relinkTools points the tools' links in dir into binDir. Only links into
// a runtime version's bin dir are ours to change: a kubectl the host had
// before (install kept it aside) or none at all is left alone.
func relinkTools(dir, binDir string) error {
	for _, tool := range linkedTools {
		link := filepath.Join(dir, tool)
		target, err := os.Readlink(link)
		if err != nil {
			continue
		}
		// <root>/<version>/bin/<tool>, under the same root as binDir.
		if filepath.Base(target) != tool || filepath.Base(filepath.Dir(target)) != "bin" ||
			filepath.Dir(filepath.Dir(filepath.Dir(target))) != filepath.Dir(filepath.Dir(binDir)) {
			continue
		}
		if err := atomicfile.Symlink(filepath.Join(binDir, tool), link); err != nil {
			return fmt.Errorf("pointing %s at the runtime %s: %w", link, binDir, err)
		}
	}
	return nil
}

// restartFor restarts the runtime unless it runs t already.
func (s system) restartFor(ctx context.Context, n config.Node, t runtimeTarget) error {
	d, err := n.WithDefaults()
	if err != nil {
		return err
	}
	if st, err := node.ReadStatus(d.RunDir); err == nil && t.reached(st) {
		return nil
	}
	return s.restart(ctx, s.configPath(), t, d.RunDir)
}

type restarter func(ctx context.Context, path string, t runtimeTarget, runDir string) error

// restartHere restarts this node's runtime and waits until it runs t: how
// the master driving the upgrade switches itself (its process is not the
// runtime's).
func restartHere(ctx context.Context, path string, t runtimeTarget, runDir string) error {
	out, err := exec.CommandContext(ctx, hostGravity, "runtime", "restart", "--config", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("restarting the node runtime: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return waitFor(ctx, "the node runtime", switchTimeout, func(context.Context) (bool, error) {
		st, err := node.ReadStatus(runDir)
		if st.State == node.StateFailed {
			return false, fmt.Errorf("the node runtime failed: %s (see `gravity runtime status`)", st.Error)
		}
		return err == nil && t.reached(st), nil
	})
}

// restartDetached has the runtime restarted by a process of its own, as
// a node's agent does it: the agent is one of the components the restart
// stops, so it answers first (the restart waits a second) and the master
// waits for the node's status through the agent that comes back.
func restartDetached(_ context.Context, path string, _ runtimeTarget, _ string) error {
	_, err := supervisor.Daemonize([]string{"runtime", "restart", "--config", path, "--after", "1s"}, restartLog)
	return err
}

// newSystem is a system upgrade's executor on its node; payload is the new
// gravity binary.
func newSystem(stateDir, op string, data map[string]string, payload string, restart restarter) system {
	return system{stateDir: stateDir, op: op, gravity: nodeBinaries(stateDir, op, payload, data[dataDigest]),
		to:    runtimeTarget{config.VersionBinDir(data[dataRuntime]), data[dataVersion]},
		from:  runtimeTarget{config.VersionBinDir(data[dataOldRuntime]), data[dataOldVersion]},
		pause: data[dataPause], toolsDir: filepath.Dir(hostGravity), restart: restart}
}

// driverSystem switches the driver's own node, then waits for its Node to
// be Ready again.
type driverSystem struct {
	system
	clients cluster.Clients
	node    string
}

func (d driverSystem) Execute(ctx context.Context) error {
	if err := d.system.Execute(ctx); err != nil {
		return err
	}
	return waitReady(ctx, d.clients, d.node)
}

func (d driverSystem) Rollback(ctx context.Context) error {
	if err := d.system.Rollback(ctx); err != nil {
		return err
	}
	return waitReady(ctx, d.clients, d.node)
}

// remoteSystem has a node's agent switch it, sending the new gravity, and
// waits until the agent that comes back reports the runtime switched and
// the node is Ready.
type remoteSystem struct {
	remoteRun
	clients  cluster.Clients
	node     string
	payload  string
	to, from runtimeTarget
}

func (r remoteSystem) Execute(ctx context.Context) error {
	f, err := r.openGravity(r.payload)
	if err != nil {
		return err
	}
	defer f.Close()
	return r.run(ctx, false, f, r.to)
}

func (r remoteSystem) Rollback(ctx context.Context) error { return r.run(ctx, true, nil, r.from) }

func (r remoteSystem) run(ctx context.Context, rollback bool, payload io.Reader, t runtimeTarget) error {
	err := r.agents.Run(ctx, r.addr, r.op, r.phase, rollback, payload)
	var answer *nodeagent.AnswerError
	if errors.As(err, &answer) {
		return err
	}
	// A connection cut by the restart is no failure: the node's status
	// tells.
	werr := waitFor(ctx, "node "+r.node+"'s runtime", switchTimeout, func(ctx context.Context) (bool, error) {
		st, err := r.agents.Status(ctx, r.addr)
		if err != nil {
			return false, nil // restarting
		}
		return t.reached(node.Status{State: st.Runtime, BinDir: st.BinDir, Version: st.Version}), nil
	})
	if werr != nil {
		return errors.Join(err, werr)
	}
	return waitReady(ctx, r.clients, r.node)
}

// waitReady waits until node name is Ready.
func waitReady(ctx context.Context, c cluster.Clients, name string) error {
	return waitFor(ctx, "node "+name+" Ready", switchTimeout, func(ctx context.Context) (bool, error) {
		n, err := c.Kube.Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil // the API may be restarting with it
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
}

// waitFor polls done every second until it holds, fails, or timeout passes.
func waitFor(ctx context.Context, what string, timeout time.Duration, done func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, err := done(ctx)
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// etcdBackup snapshots etcd through the driver's member before any
// runtime changes, into the operation's directory (0600). Restoring it is
// for an etcd version change, which a runtime of the same etcd does not
// make; the snapshot is kept either way.
type etcdBackup struct {
	node config.Node
	path string
}

func (e etcdBackup) Execute(ctx context.Context) error {
	c, err := clusterservice.EtcdClient(ctx, e.node)
	if err != nil {
		return err
	}
	defer c.Close()
	rc, err := c.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("etcd snapshot: %w", err)
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(e.path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(e.path, 0o600, func(w io.Writer) error {
		if _, err := io.Copy(w, rc); err != nil {
			return fmt.Errorf("etcd snapshot: %w", err)
		}
		return nil
	})
}

// Rollback keeps the snapshot: it changed nothing in the cluster.
func (etcdBackup) Rollback(context.Context) error { return nil }

// coreDNS moves the cluster's CoreDNS Deployment to another image (the new
// base image's) and waits until it has rolled out; its rollback moves it
// back.
type coreDNS struct {
	clients    cluster.Clients
	image, old string
}

func (c coreDNS) Execute(ctx context.Context) error  { return c.set(ctx, c.image) }
func (c coreDNS) Rollback(ctx context.Context) error { return c.set(ctx, c.old) }

func (c coreDNS) set(ctx context.Context, image string) error {
	if image == "" {
		return errors.New("no CoreDNS image to set")
	}
	deployments := c.clients.Kube.Deployments(config.DNSNamespace)
	d, err := deployments.Get(ctx, config.DNSName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("CoreDNS: %w", err)
	}
	changed := false
	for i := range d.Spec.Template.Spec.Containers {
		if d.Spec.Template.Spec.Containers[i].Image != image {
			d.Spec.Template.Spec.Containers[i].Image = image
			changed = true
		}
	}
	if changed {
		if d, err = deployments.Update(ctx, d, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("CoreDNS: %w", err)
		}
	}
	return waitFor(ctx, "CoreDNS to roll out "+image, switchTimeout, func(ctx context.Context) (bool, error) {
		d, err := deployments.Get(ctx, config.DNSName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas >= want && d.Status.AvailableReplicas >= want, nil
	})
}

// runningCoreDNS is the image the cluster's CoreDNS runs ("" without one).
func runningCoreDNS(ctx context.Context, c cluster.Clients) (string, error) {
	d, err := c.Kube.Deployments(config.DNSNamespace).Get(ctx, config.DNSName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("CoreDNS: %w", err)
	}
	if len(d.Spec.Template.Spec.Containers) == 0 {
		return "", nil
	}
	return d.Spec.Template.Spec.Containers[0].Image, nil
}
