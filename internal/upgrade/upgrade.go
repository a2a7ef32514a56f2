package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/opengravity/gravity/internal/baseimage"
	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/clusterimage"
	"github.com/opengravity/gravity/internal/install"
	"github.com/opengravity/gravity/internal/nodeagent"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/runtime/node"
	"github.com/opengravity/gravity/internal/runtime/supervisor"
	"github.com/opengravity/gravity/internal/store"
	"github.com/opengravity/gravity/internal/version"
)

// Options of `./upload`, `gravity upgrade` and the plan commands of an
// upgrade.
type Options struct {
	StateDir string
	// ImageDir is the unpacked new cluster image (default: the directory
	// of the running gravity, as ./upgrade runs it).
	ImageDir string
	Force    bool // upgrade a cluster with degraded nodes
	Manual   bool // create the plan, run nothing
	NoWait   bool // start the operation, do not follow it
	Out      io.Writer
	Log      *slog.Logger
}

// LogFile is where the operation's own process writes.
const LogFile = "/var/log/gravity/upgrade.log"

// record is this node's note of the upgrade it drives: the operation and
// where its new image is. Its presence makes `gravity plan` commands act
// on the upgrade.
type record struct {
	OperationID string `json:"operationID"`
	ImageDir    string `json:"imageDir"`
}

func recordPath(stateDir string) string { return filepath.Join(stateDir, "local", "upgrade.json") }
func lockPath(stateDir string) string   { return filepath.Join(stateDir, "local", "upgrade.lock") }

// Pending tells whether this node drives an unfinished upgrade.
func Pending(stateDir string) bool {
	_, err := os.Stat(recordPath(stateDir))
	return err == nil
}

func loadRecord(stateDir string) (record, error) {
	var r record
	data, err := os.ReadFile(recordPath(stateDir))
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("%s: %w", recordPath(stateDir), err)
	}
	return r, nil
}

func (r record) save(stateDir string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return plan.WriteFileAtomic(recordPath(stateDir), data, 0o600)
}

func (o Options) say(format string, args ...any) {
	fmt.Fprintf(o.Out, "%s\t%s\n", time.Now().UTC().Format("Mon Jan _2 15:04:05 UTC"), fmt.Sprintf(format, args...))
}

func (o Options) imageDir() (string, error) {
	if o.ImageDir != "" {
		return filepath.Abs(o.ImageDir)
	}
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.Dir(exe), nil
}

// target is the new image as the upgrade sees it.
type target struct {
	dir  string
	meta *clusterimage.Meta
	pkg  string // the app package
}

// openImage verifies the unpacked image whole: a corrupt or cut image is
// refused before anything is copied.
func (o Options) openImage(ctx context.Context) (target, error) {
	dir, err := o.imageDir()
	if err != nil {
		return target{}, err
	}
	meta, err := clusterimage.VerifyDir(ctx, dir)
	if err != nil {
		return target{}, fmt.Errorf("cluster image in %s refused: %w", dir, err)
	}
	return target{dir: dir, meta: meta, pkg: install.AppLocator(meta)}, nil
}

// local is this master and its admin clients.
type local struct {
	node    config.Node
	clients cluster.Clients
}

func connect(ctx context.Context, stateDir string) (local, error) {
	n, err := install.LocalNode(stateDir)
	if err != nil {
		return local{}, err
	}
	if !n.IsMaster() {
		return local{}, fmt.Errorf("node %s is a worker: run the upgrade on a master", n.Name)
	}
	c, err := install.Clients(install.AdminKubeconfig(n))
	if err != nil {
		return local{}, err
	}
	// Every master's registry gets the new images and resources: the
	// cluster's masters now, not those this node's config started with.
	if n.MasterIPs, err = cluster.MasterIPs(ctx, c); err != nil {
		return local{}, err
	}
	return local{node: n, clients: c}, nil
}

// agents is a client of nodes' agents with this master's agent-client
// certificate.
func (l local) agents() (*nodeagent.Client, error) {
	p := l.node.Paths()
	cfg, err := pki.ClientTLS(p.Cert(pki.AgentClient), p.Key(pki.AgentClient), p.Cert(pki.ClusterCAName))
	if err != nil {
		return nil, fmt.Errorf("this master's agent client: %w", err)
	}
	return nodeagent.NewClient(cfg), nil
}

// lease is this process's hold on the cluster's operations lease.
func (l local) lease(log *slog.Logger) cluster.Lease {
	return cluster.Lease{Clients: l.clients, Holder: fmt.Sprintf("%s/upgrade-%d", l.node.Name, os.Getpid()), Log: log}
}

// unfinished refuses a new upgrade (or a rollback of the last) while this
// node drives one that has not ended.
func unfinished(stateDir string) error {
	if !Pending(stateDir) {
		return nil
	}
	r, _ := loadRecord(stateDir)
	return fmt.Errorf("upgrade operation %s is unfinished: see `gravity plan`, then `gravity plan resume` or `gravity plan rollback`", r.OperationID)
}

// checkVersions refuses an image of another application, the same version
// or an older one.
func checkVersions(info cluster.Info, meta *clusterimage.Meta) error {
	if meta.Name != info.App {
		return fmt.Errorf("this image is of application %s; the cluster runs %s", meta.Name, info.App)
	}
	from, err := semver.StrictNewVersion(info.AppVersion)
	if err != nil {
		return fmt.Errorf("the cluster's version %q: %w", info.AppVersion, err)
	}
	to, err := semver.StrictNewVersion(meta.Version)
	if err != nil {
		return fmt.Errorf("the image's version %q: %w", meta.Version, err)
	}
	switch to.Compare(from) {
	case 0:
		return fmt.Errorf("the cluster already runs %s %s", info.App, info.AppVersion)
	case -1:
		return fmt.Errorf("%s %s is older than the cluster's %s: downgrades are not supported (roll back an upgrade instead)", meta.Name, meta.Version, info.AppVersion)
	}
	return nil
}

// Start plans the upgrade to the image and starts it: the cluster is
// checked, the operation recorded in the cluster under the operations
// lease, then run by a process of its own that outlives this one, which
// follows it unless NoWait or Manual.
func Start(ctx context.Context, o Options) error {
	img, err := o.openImage(ctx)
	if err != nil {
		return err
	}
	if err := unfinished(o.StateDir); err != nil {
		return err
	}
	l, err := connect(ctx, o.StateDir)
	if err != nil {
		return err
	}
	var p *plan.Plan
	err = l.lease(o.Log).With(ctx, func() error {
		var err error
		p, err = admit(ctx, o, l, img)
		return err
	})
	if err != nil {
		return err
	}
	o.say("Upgrading application %s from %s to %s", p.Data[dataApp], p.Data[dataFrom], p.Data[dataTo])
	if o.Manual {
		fmt.Fprintf(o.Out, "The operation %s has been created in manual mode: run its phases with `gravity plan execute --phase ID` or all of them with `gravity plan resume`.\n", p.OperationID)
		return nil
	}
	if _, err := supervisor.Daemonize([]string{"plan", "resume", "--state-dir", o.StateDir}, LogFile); err != nil {
		return err
	}
	o.say("Running the upgrade on %s in a process of its own (log: %s)", l.node.Name, LogFile)
	if o.NoWait {
		fmt.Fprintln(o.Out, "Use `gravity status` and `gravity plan` to follow it.")
		return nil
	}
	return follow(ctx, o, l.clients, p.OperationID)
}

// admit checks the cluster and records the operation; under the lease,
// so no join, removal or other upgrade is admitted beside it.
func admit(ctx context.Context, o Options, l local, img target) (*plan.Plan, error) {
	info, err := cluster.LoadInfo(ctx, l.clients)
	if err != nil {
		return nil, err
	}
	if err := checkVersions(info, img.meta); err != nil {
		return nil, err
	}
	if info.State != "active" {
		return nil, fmt.Errorf("the cluster is %s, not active", info.State)
	}
	ops, err := cluster.Operations(ctx, l.clients)
	if err != nil {
		return nil, err
	}
	for _, op := range ops {
		if st := op.State(); st != plan.Completed && st != plan.RolledBack {
			return nil, fmt.Errorf("operation %s (%s) is %s: finish it (`gravity plan resume`) or roll it back first", op.OperationID, orType(op), st)
		}
	}
	st, err := cluster.ReadStatus(ctx, l.clients, cluster.Probes{Node: cluster.KubeletProbe})
	if err != nil {
		return nil, err
	}
	for _, n := range st.Nodes {
		if n.Status != "healthy" && !o.Force {
			return nil, fmt.Errorf("the upgrade is prohibited because some cluster nodes are currently degraded: %s (%s): %s; use --force to upgrade anyway",
				n.Name, n.Address, strings.Join(n.Problems, "; "))
		}
	}
	cfg := appConfig(o.StateDir, l.node, info, img.pkg, img.meta.Version, "")
	var hooks []string
	for _, h := range updateHooks {
		ok, err := install.HasAppHook(cfg, h)
		if err != nil {
			return nil, fmt.Errorf("the new version's package %s (was it uploaded? run ./upload): %w", img.pkg, err)
		}
		if ok {
			hooks = append(hooks, h)
		}
	}
	rels, err := deployedReleases(ctx, l.clients)
	if err != nil {
		return nil, err
	}
	digest, err := fileDigest(filepath.Join(img.dir, "gravity"))
	if err != nil {
		return nil, err
	}
	var nodes []Node // masters first, as Gravity upgraded them
	for _, master := range []bool{true, false} {
		for _, n := range st.Nodes {
			if n.Master == master {
				nodes = append(nodes, Node{Name: n.Name, Addr: n.Address, Master: master})
			}
		}
	}
	spec := Spec{OperationID: newID(), ClusterName: info.Name, App: info.App, From: info.AppVersion, To: img.meta.Version,
		FromPackage: "gravitational.io/" + info.App + ":" + info.AppVersion, ToPackage: img.pkg,
		Node: l.node.Name, Nodes: nodes, Gravity: digest, Version: version.Version, Hooks: hooks, Releases: rels, Force: o.Force,
		Created: time.Now().UTC()}
	if err := runtimeSpec(&spec, o.StateDir, l.node, img.meta); err != nil {
		return nil, err
	}
	if spec.OldCoreDNS, err = runningCoreDNS(ctx, l.clients); err != nil {
		return nil, err
	}
	if spec.OldCoreDNS != "" {
		spec.CoreDNS = install.PinnedImage(img.meta, baseimage.ImageCoreDNS)
	}
	p := Plan(spec)
	if err := (record{OperationID: p.OperationID, ImageDir: img.dir}).save(o.StateDir); err != nil {
		return nil, err
	}
	if err := cluster.SaveOperation(ctx, l.clients, p); err != nil {
		return nil, errors.Join(err, os.Remove(recordPath(o.StateDir)))
	}
	info.State = "updating"
	return p, cluster.SaveInfo(ctx, l.clients, info)
}

// runtimeSpec fills in what the plan needs of the runtime: the version the
// cluster runs (this master's) and the image's, the new sandbox image, and
// the packages the nodes get from this master's store. A runtime older
// than the cluster's is refused.
func runtimeSpec(s *Spec, stateDir string, n config.Node, meta *clusterimage.Meta) error {
	s.FromRuntime = runtimeVersion(n.BinDir)
	if rs, err := node.ReadStatus(n.RunDir); err == nil {
		s.OldVersion = rs.Version
	}
	st, err := store.Open(install.Config{StateDir: stateDir}.PackagesDir())
	if err != nil {
		return err
	}
	for _, it := range meta.Packages {
		if it.Kind != clusterimage.KindPackage {
			continue
		}
		pkg, err := packageOf(st, it.Ref)
		if err != nil {
			return fmt.Errorf("the new version's package %s (was it uploaded? run ./upload): %w", it.Ref, err)
		}
		if v, ok := strings.CutPrefix(it.Ref, RuntimeRef("")); ok {
			s.ToRuntime, s.RuntimePackage = v, pkg
			continue
		}
		s.MasterPackages = append(s.MasterPackages, pkg)
	}
	if !s.RuntimeChanges() {
		return nil
	}
	from, ferr := semver.StrictNewVersion(s.FromRuntime)
	to, terr := semver.StrictNewVersion(s.ToRuntime)
	if ferr == nil && terr == nil && to.LessThan(from) {
		return fmt.Errorf("the image's runtime %s is older than the cluster's %s: downgrades are not supported", s.ToRuntime, s.FromRuntime)
	}
	s.Pause = install.PinnedImage(meta, baseimage.ImagePause)
	return nil
}

func orType(p *plan.Plan) string {
	if p.Description != "" {
		return p.Description
	}
	return p.OperationType
}

// Resume runs the rest of this node's upgrade, Execute one phase of it,
// Rollback one phase or all of it: `gravity plan resume|execute|rollback`.
func Resume(ctx context.Context, o Options) error {
	return run(ctx, o, func(r *plan.Runner) (*plan.Plan, error) { return r.Resume(ctx) })
}

func Execute(ctx context.Context, o Options, phase string, force bool) error {
	return run(ctx, o, func(r *plan.Runner) (*plan.Plan, error) { return r.Execute(ctx, phase, force) })
}

func Rollback(ctx context.Context, o Options, phase string, force bool) error {
	return run(ctx, o, func(r *plan.Runner) (*plan.Plan, error) { return r.Rollback(ctx, phase, force) })
}

// run runs f on the upgrade's runner, one process at a time (a lock on
// this node), and finishes the operation when f leaves it completed or
// rolled back: the cluster's version and state, and this node's record.
func run(ctx context.Context, o Options, f func(*plan.Runner) (*plan.Plan, error)) error {
	rec, err := loadRecord(o.StateDir)
	if err != nil {
		return fmt.Errorf("no upgrade to run on this node: %w", err)
	}
	unlock, err := lock(o.StateDir)
	if err != nil {
		return err
	}
	defer unlock()
	l, err := connect(ctx, o.StateDir)
	if err != nil {
		return err
	}
	store := cluster.OperationStore{Clients: l.clients, ID: rec.OperationID}
	p, err := store.Load(ctx)
	if err != nil {
		return err
	}
	info, err := cluster.LoadInfo(ctx, l.clients)
	if err != nil {
		return err
	}
	r := &plan.Runner{Store: store, Executors: executors(o, l, rec, p, info), Progress: func(e plan.Event) {
		switch e.State {
		case plan.InProgress:
			o.say("%s", e.Phase.Description)
		case plan.Completed:
			o.say("Completed: %s", e.Phase.ID)
		case plan.Failed:
			o.say("Failed: %s: %v", e.Phase.ID, e.Err)
		case plan.RolledBack:
			o.say("Rolled back: %s", e.Phase.Description)
		}
	}}
	p, err = f(r)
	if err != nil {
		return err
	}
	return finish(ctx, o, l, p)
}

// finish: a completed upgrade leaves the cluster on the new version, a
// rolled back one on the old; both active, and this node's record gone.
func finish(ctx context.Context, o Options, l local, p *plan.Plan) error {
	c := l.clients
	var version, pkg string
	switch p.State() {
	case plan.Completed:
		version, pkg = p.Data[dataTo], p.Data[dataToPackage]
	case plan.RolledBack:
		version, pkg = p.Data[dataFrom], p.Data[dataFromPackage]
	default:
		return nil
	}
	info, err := cluster.LoadInfo(ctx, c)
	if err != nil {
		return err
	}
	// The node hooks that joins and removals run are the version's the
	// cluster runs now.
	if err := install.SaveNodeHooks(ctx, appConfig(o.StateDir, l.node, info, pkg, version, p.OperationID), io.Discard); err != nil {
		return fmt.Errorf("recording the node hooks of %s %s: %w", info.App, version, err)
	}
	info.AppVersion, info.State = version, "active"
	if err := cluster.SaveInfo(ctx, c, info); err != nil {
		return err
	}
	if err := os.Remove(recordPath(o.StateDir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if p.State() == plan.Completed {
		o.say("Operation %s has completed: the cluster runs %s %s", p.OperationID, p.Data[dataApp], version)
	} else {
		o.say("Operation %s has been rolled back: the cluster runs %s %s", p.OperationID, p.Data[dataApp], version)
	}
	return nil
}

// lock makes this process the only one running the upgrade on this node;
// the lock goes with the process, however it ends.
func lock(stateDir string) (func(), error) {
	f, err := os.OpenFile(lockPath(stateDir), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another gravity process is running the upgrade on this node (see %s)", LogFile)
	}
	return func() { f.Close() }, nil
}

// running tells whether a process holds the upgrade's lock.
func running(stateDir string) bool {
	unlock, err := lock(stateDir)
	if err != nil {
		return true
	}
	unlock()
	return false
}

// apiOutage is how long follow waits for the API while the operation's
// process runs.
const apiOutage = 5 * time.Minute

// startGrace is how long the operation's process may take to take its
// lock before follow counts it as gone.
const startGrace = 3 * time.Second

// follow prints the operation's progress from the cluster until it ends,
// or until the process running it has gone without ending it.
func follow(ctx context.Context, o Options, c cluster.Clients, id string) error {
	store := cluster.OperationStore{Clients: c, ID: id}
	seen := map[string]plan.State{}
	start := time.Now()
	lastSeen := start
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
		p, err := store.Load(ctx)
		if err != nil {
			// This master's API server restarts with its runtime: the
			// operation goes on while its process does.
			if running(o.StateDir) && time.Since(lastSeen) < apiOutage {
				continue
			}
			return err
		}
		lastSeen = time.Now()
		for _, ph := range p.Leaves() {
			if seen[ph.ID] != ph.State && ph.State == plan.InProgress {
				o.say("%s", ph.Description)
			}
			seen[ph.ID] = ph.State
		}
		switch p.State() {
		case plan.Completed:
			if !Pending(o.StateDir) {
				o.say("Upgrade to %s completed in %s", p.Data[dataTo], time.Since(start).Round(time.Millisecond))
				return nil
			}
			if running(o.StateDir) {
				continue // finishing: the cluster's version is being recorded
			}
		case plan.Failed:
			if running(o.StateDir) {
				continue
			}
			for _, ph := range p.Leaves() {
				if ph.State == plan.Failed {
					return fmt.Errorf("phase %s failed: %s\nthe cluster is still upgrading: fix the cause and run `gravity plan resume`, or `gravity plan rollback` to return to %s (log: %s)",
						ph.ID, ph.Error, p.Data[dataFrom], LogFile)
				}
			}
		}
		if time.Since(start) > startGrace && !running(o.StateDir) {
			if !Pending(o.StateDir) {
				return nil
			}
			return fmt.Errorf("the upgrade process has exited with operation %s %s; see %s, then `gravity plan resume` or `gravity plan rollback`", id, p.State(), LogFile)
		}
	}
}

// RollbackLast rolls back the cluster's last upgrade after it completed:
// the same engine undoes its phases in reverse (the application back to
// its releases' earlier revisions or through the rollback hook, the old
// gravity back in place), while the old version's packages are still in
// the store. It runs on the master that drove that upgrade, which kept
// what it replaced.
func RollbackLast(ctx context.Context, o Options) error {
	if err := unfinished(o.StateDir); err != nil {
		return err
	}
	l, err := connect(ctx, o.StateDir)
	if err != nil {
		return err
	}
	var last *plan.Plan
	err = l.lease(o.Log).With(ctx, func() error {
		info, err := cluster.LoadInfo(ctx, l.clients)
		if err != nil {
			return err
		}
		if info.State != "active" {
			return fmt.Errorf("the cluster is %s, not active", info.State)
		}
		ops, err := cluster.Operations(ctx, l.clients)
		if err != nil {
			return err
		}
		for _, op := range ops {
			if st := op.State(); st != plan.Completed && st != plan.RolledBack {
				return fmt.Errorf("operation %s (%s) is %s: finish it or roll it back first", op.OperationID, orType(op), st)
			}
			if last == nil && op.OperationType == OperationType && op.State() == plan.Completed {
				last = op // newest first
			}
		}
		if last == nil {
			return errors.New("the cluster has no completed upgrade to roll back")
		}
		if last.Data[dataTo] != info.AppVersion {
			return fmt.Errorf("the last upgrade (%s) was to %s, but the cluster runs %s", last.OperationID, last.Data[dataTo], info.AppVersion)
		}
		if last.Data[dataDriver] != "" && last.Data[dataDriver] != l.node.Name {
			return fmt.Errorf("operation %s was driven by master %s, which kept what it replaced: roll it back there", last.OperationID, last.Data[dataDriver])
		}
		if err := (record{OperationID: last.OperationID}).save(o.StateDir); err != nil {
			return err
		}
		info.State = "updating"
		return cluster.SaveInfo(ctx, l.clients, info)
	})
	if err != nil {
		return err
	}
	o.say("Rolling back the upgrade of %s from %s to %s (operation %s)", last.Data[dataApp], last.Data[dataFrom], last.Data[dataTo], last.OperationID)
	return Rollback(ctx, o, "", false)
}
