package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/opengravity/gravity/internal/atomicfile"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/runtime/node"
	"github.com/opengravity/gravity/internal/store"
)

// PhaseInput is what the installer sends a node with a phase to run: the
// operation's config and, for bootstrap, the cluster's CA set (the node
// may be another machine, so nothing is read from the installer's disk).
type PhaseInput struct {
	Config Config `json:"config"`
	Node   string `json:"node"`
	// Type is the phase's type, which picks what runs it on the node.
	Type  string            `json:"type"`
	Files map[string][]byte `json:"files,omitempty"` // CA set, by path relative to its directory
}

// Host paths install puts the tools at, on root's PATH.
var (
	hostBinDir     = "/usr/local/bin"
	rootKubeconfig = "/root/.kube/config"
)

// RunNodePhase runs one node-local phase (or its rollback) on this node;
// `gravity install phase` calls it for the install agent.
func RunNodePhase(ctx context.Context, in PhaseInput, id string, rollback bool, out io.Writer) error {
	nd, err := in.Config.Node(in.Node)
	if err != nil {
		return err
	}
	ex, err := nodeExecutor(in, nd, id, out)
	if err != nil {
		return err
	}
	if rollback {
		return ex.Rollback(ctx)
	}
	return ex.Execute(ctx)
}

func nodeExecutor(in PhaseInput, nd Node, id string, out io.Writer) (plan.Executor, error) {
	c := in.Config
	rn, err := c.RuntimeNode(nd)
	if err != nil {
		return nil, err
	}
	base := nodeStep{cfg: c, node: nd, rn: rn, out: out, files: in.Files}
	switch in.Type {
	case typeChecks:
		return checksStep{base}, nil
	case typeBootstrap:
		return bootstrapStep{base}, nil
	case typePull:
		return pullStep{base}, nil
	case typeRuntime:
		return runtimeStep{base}, nil
	case typeExport:
		return exportStep{base}, nil
	}
	return nil, fmt.Errorf("phase %s (type %q) does not run on node %s", id, in.Type, nd.IP)
}

type nodeStep struct {
	cfg   Config
	node  Node
	rn    config.Node
	out   io.Writer
	files map[string][]byte
}

// bootstrapStep writes the node's config, certificates and kubeconfigs,
// and root's kubeconfig on masters.
type bootstrapStep struct{ nodeStep }

func (s bootstrapStep) Execute(context.Context) error {
	cs, err := s.caSet()
	if err != nil {
		return err
	}
	data, err := node.FormatNode(s.rn)
	if err != nil {
		return err
	}
	if err := plan.WriteFileAtomic(s.cfg.nodeConfigPath(), data, config.FileMode); err != nil {
		return err
	}
	if err := node.IssueNode("/", cs, s.rn); err != nil {
		return err
	}
	if !s.node.Master {
		return nil
	}
	return installKubeconfig(s.rn.Paths().Kubeconfig(config.KubeconfigAdmin))
}

// installKubeconfig makes the admin's kubeconfig root's, keeping a
// kubeconfig root already had beside it, for the rollback to restore.
func installKubeconfig(admin string) error {
	data, err := os.ReadFile(admin)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(rootKubeconfig)
	if err == nil && !bytes.Equal(old, data) {
		if _, err := os.Stat(rootKubeconfig + backupSuffix); errors.Is(err, fs.ErrNotExist) {
			if err := os.Rename(rootKubeconfig, rootKubeconfig+backupSuffix); err != nil {
				return err
			}
		}
	}
	return plan.WriteFileAtomic(rootKubeconfig, data, 0o600)
}

const backupSuffix = ".before-gravity"

// restoreKubeconfig undoes installKubeconfig while root's kubeconfig is
// still install's copy of admin.
func restoreKubeconfig(admin string) error {
	if err := removeIfSame(rootKubeconfig, admin); err != nil {
		return err
	}
	if _, err := os.Stat(rootKubeconfig + backupSuffix); err == nil {
		if _, err := os.Stat(rootKubeconfig); errors.Is(err, fs.ErrNotExist) {
			return os.Rename(rootKubeconfig+backupSuffix, rootKubeconfig)
		}
	}
	if _, err := os.Stat(rootKubeconfig); errors.Is(err, fs.ErrNotExist) {
		// kubectl's discovery caches of the cluster that is gone.
		dir := filepath.Dir(rootKubeconfig)
		_ = os.RemoveAll(filepath.Join(dir, "cache"))
		_ = os.RemoveAll(filepath.Join(dir, "http-cache"))
		_ = os.Remove(dir) // only if empty
	}
	return nil
}

// caSet rebuilds the CA set from the files the installer sent, in
// memory: no key is written anywhere but where the node keeps it.
func (s bootstrapStep) caSet() (*pki.CASet, error) {
	if len(s.files) == 0 {
		return nil, errors.New("bootstrap: the installer sent no CA set")
	}
	cs, err := pki.ParseFiles(s.files)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return cs, nil
}

func (s bootstrapStep) Rollback(context.Context) error {
	p := s.rn.Paths()
	// First, while the admin kubeconfig to compare with is still there.
	errs := []error{restoreKubeconfig(p.Kubeconfig(config.KubeconfigAdmin))}
	for _, path := range []string{p.PKI, p.Config} {
		errs = append(errs, os.RemoveAll(path))
	}
	return errors.Join(errs...)
}

// removeIfSame removes path only while it is still the copy install made
// of orig: an admin who replaced root's kubeconfig keeps theirs.
func removeIfSame(path, orig string) error {
	a, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	b, berr := os.ReadFile(orig)
	if err != nil || berr != nil || !bytes.Equal(a, b) {
		return err
	}
	return os.Remove(path)
}

// pullStep puts the runtime binaries in the node's bin dir and gravity,
// kubectl and helm on root's PATH.
type pullStep struct{ nodeStep }

func (s pullStep) Execute(ctx context.Context) error {
	st, err := store.Open(s.cfg.PackagesDir())
	if err != nil {
		return err
	}
	bin := s.rn.BinDir
	if _, err := os.Stat(filepath.Join(bin, "kube")); err != nil {
		// The package holds bin/…: it is extracted into bin's parent,
		// which only it fills.
		if filepath.Base(bin) != "bin" {
			return fmt.Errorf("runtime bin dir %s: must end in /bin", bin)
		}
		_ = os.RemoveAll(filepath.Dir(bin)) // an earlier attempt's partial tree, never a finished one (atomicdir)
		ref := "gravitational.io/runtime:" + s.cfg.BaseVersion
		var skip []string
		if !s.node.Master {
			skip = node.MasterOnlyFiles()
		}
		if err := st.ExtractPackageExcept(ctx, ref, filepath.Dir(bin), skip); err != nil {
			return fmt.Errorf("extracting %s: %w", ref, err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	for _, tool := range hostTools {
		if err := backupForeign(filepath.Join(hostBinDir, tool), self, bin); err != nil {
			return err
		}
	}
	if err := copyFileAtomic(self, filepath.Join(hostBinDir, "gravity"), 0o755); err != nil {
		return err
	}
	for _, tool := range []string{"kubectl", "helm"} {
		if err := atomicfile.Symlink(filepath.Join(bin, tool), filepath.Join(hostBinDir, tool)); err != nil {
			return err
		}
	}
	return nil
}

func (s pullStep) Rollback(context.Context) error {
	var errs []error
	for _, tool := range hostTools {
		path := filepath.Join(hostBinDir, tool)
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		if _, err := os.Lstat(path + backupSuffix); err == nil {
			errs = append(errs, os.Rename(path+backupSuffix, path))
		}
	}
	errs = append(errs, os.RemoveAll(s.rn.BinDir))
	// Only if empty: the version's directory, then /usr/lib/gravity.
	_ = os.Remove(filepath.Dir(s.rn.BinDir))
	_ = os.Remove(filepath.Dir(filepath.Dir(s.rn.BinDir)))
	return errors.Join(errs...)
}

// hostTools are what install puts on root's PATH.
var hostTools = []string{"gravity", "kubectl", "helm"}

// backupForeign moves aside a tool install did not put there (a kubectl
// the host already had), for the rollback to restore. Ours are a symlink
// into the runtime's bin dir or a copy of this gravity binary.
func backupForeign(path, self, bin string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if target, err := os.Readlink(path); err == nil && strings.HasPrefix(target, bin+"/") {
		return nil
	}
	if fi.Mode().IsRegular() {
		a, _ := os.ReadFile(path)
		b, _ := os.ReadFile(self)
		if bytes.Equal(a, b) {
			return nil
		}
	}
	if _, err := os.Lstat(path + backupSuffix); err == nil {
		return nil // an earlier attempt kept the original already
	}
	return os.Rename(path, path+backupSuffix)
}

func copyFileAtomic(src, dst string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return atomicfile.CopyFile(src, dst, mode)
}

// runtimeStep starts the node's runtime as its own detached service (a
// systemd unit, else a daemon) from the installed gravity binary, so
// neither killing the installer nor deleting the unpacked image stops it.
type runtimeStep struct{ nodeStep }

func (s runtimeStep) Execute(ctx context.Context) error {
	if _, err := node.RunningPID(s.rn.RunDir); err != nil {
		if err := s.gravity(ctx, "runtime", "start", "--config", s.cfg.nodeConfigPath()); err != nil {
			return err
		}
	}
	return waitRuntime(ctx, s.rn.RunDir, 3*time.Minute)
}

// waitRuntime waits until every runtime component is ready, failing as
// soon as the supervisor gives one up.
func waitRuntime(ctx context.Context, runDir string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		st, err := node.ReadStatus(runDir)
		switch {
		case err == nil && st.State == "running":
			return nil
		case err == nil && st.State == "failed":
			return fmt.Errorf("node runtime failed: %s (see `gravity runtime status`)", st.Error)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node runtime not ready: %w (state %q; see `gravity runtime status`)", ctx.Err(), st.State)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (s runtimeStep) gravity(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(hostBinDir, "gravity"), args...)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("gravity %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// Rollback stops the runtime and removes everything it left on the node:
// containers, mounts, cgroups, network state and its data.
func (s runtimeStep) Rollback(ctx context.Context) error {
	return node.Reset(ctx, s.rn, s.out)
}

// Node phase types another operation runs on a node the way install does
// (a join's package pull and runtime start).
const (
	NodeTypePull    = typePull
	NodeTypeRuntime = typeRuntime
)

// NodeExecutor is the executor of node phase typ for node ip of c, run on
// that node: the join reuses install's pull (from c's package store) and
// runtime start.
func NodeExecutor(c Config, ip, typ string, out io.Writer) (plan.Executor, error) {
	nd, err := c.Node(ip)
	if err != nil {
		return nil, err
	}
	return nodeExecutor(PhaseInput{Config: c, Node: ip, Type: typ}, nd, typ, out)
}

// NodeConfigPath is where a node's runtime config is kept.
func (c Config) NodeConfigPath() string { return c.nodeConfigPath() }

// InstallRootKubeconfig makes a master's admin kubeconfig root's (a
// kubeconfig root had is kept beside it); RestoreRootKubeconfig undoes it.
func InstallRootKubeconfig(admin string) error { return installKubeconfig(admin) }
func RestoreRootKubeconfig(admin string) error { return restoreKubeconfig(admin) }
