package install

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/opengravity/gravity/internal/baseimage"
	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/clusterimage"
	"github.com/opengravity/gravity/internal/install/preflight"
	"github.com/opengravity/gravity/internal/manifest"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/runtime/node"
	"github.com/opengravity/gravity/internal/version"
)

// Options are `gravity install`'s flags.
type Options struct {
	ImageDir      string // the unpacked cluster image
	StateDir      string
	AdvertiseAddr string
	Token         string
	// TokenTTL, when set, makes the join token expire that long after the
	// install starts.
	TokenTTL        time.Duration
	Cluster         string
	CloudProvider   string
	PodCIDR         string
	ServiceCIDR     string
	Role            string
	Flavor          string
	SkipChecks      []string
	PreflightReport string
	// Out gets the progress lines users read; Log the detailed log.
	Out io.Writer
	Log *slog.Logger
	// LogFile receives every node phase's output.
	LogFile string
}

// AgentPort is where the installer listens for install agents (Gravity's
// installer port).
const AgentPort = 61009

// DefaultLogFile keeps the install's detailed output.
const DefaultLogFile = "/var/log/gravity-install.log"

// Install plans an install of the unpacked cluster image on this node and
// runs it. Nothing on the host changes until the image is verified, the
// options are valid and the preflight checks pass.
func Install(ctx context.Context, o Options) error {
	start := time.Now()
	p := printer{w: o.Out}
	p.say("Starting installer")
	if err := checkNotInstalled(o.StateDir); err != nil {
		return err
	}
	p.say("Preparing for installation...")
	cfg, app, err := prepare(ctx, o)
	if err != nil {
		return err
	}
	if err := preflightLocal(ctx, o, cfg, app, p); err != nil {
		return err
	}
	if err := cfg.save(); err != nil {
		return err
	}
	pl := Plan(cfg)
	if err := cfg.PlanStore().Save(ctx, pl); err != nil {
		return err
	}
	p.say("Installing application %s:%s", cfg.AppName, cfg.AppVersion)
	p.say("Starting non-interactive install")
	return operate(ctx, cfg, o, start, func(r *plan.Runner) error {
		p.say("Starting the installation")
		p.say("Operation has been created")
		return resume(ctx, r, cfg, p, start)
	})
}

// resume runs the rest of the plan and, once it is done, marks the
// cluster active.
func resume(ctx context.Context, r *plan.Runner, cfg Config, p printer, start time.Time) error {
	pl, err := r.Resume(ctx)
	if err != nil {
		return err
	}
	if err := finish(ctx, cfg, pl); err != nil {
		return err
	}
	m, err := step{cfg: cfg}.master()
	if err != nil {
		return err
	}
	if err := waitWeb(ctx, m); err != nil {
		return err
	}
	p.say("Operation has completed")
	p.say("Installation succeeded in %v", time.Since(start))
	// Gravity's users could not find how to make the first user: no
	// user exists until this is run.
	p.say("No users exist yet: `sudo gravity users add --roles=@teleadmin admin` on a master prints the first administrator's signup URL")
	return nil
}

// waitWeb waits for the master's cluster API to answer on both its ports
// (:3009 and the cluster management URL's :32009).
func waitWeb(ctx context.Context, m config.Node) error {
	p := m.Paths()
	tlsCfg, err := pki.ClientTLS(p.Cert(pki.Admin), p.Key(pki.Admin), p.Cert(pki.ClusterCAName))
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for _, port := range []int{node.ClusterServicePort, node.ClusterServiceWebPort} {
		url := "https://" + net.JoinHostPort(m.IP.String(), strconv.Itoa(port))
		probe := cluster.HTTPProbe(client, "/healthz")
		for {
			err := probe(ctx, url)
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("the cluster API at %s does not answer: %w", url, err)
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	return nil
}

// finish records the finished operation and the active cluster in the
// cluster.
func finish(ctx context.Context, cfg Config, pl *plan.Plan) error {
	c, err := step{cfg: cfg}.clients()
	if err != nil {
		return err
	}
	if err := cluster.SaveOperation(ctx, c, pl); err != nil {
		return err
	}
	if err := cluster.SaveInfo(ctx, c, step{cfg: cfg}.info("active")); err != nil {
		return err
	}
	// The installer's copy of the CA set has done its work (the masters
	// hold theirs, and hand it to masters that join).
	return os.RemoveAll(cfg.PKIDir())
}

// Resume continues the install operation on this node from its plan.
func Resume(ctx context.Context, o Options) error {
	cfg, err := LoadConfig(o.StateDir)
	if err != nil {
		return err
	}
	o.ImageDir = cfg.ImageDir
	start := time.Now()
	p := printer{w: o.Out}
	return operate(ctx, cfg, o, start, func(r *plan.Runner) error { return resume(ctx, r, cfg, p, start) })
}

// Execute runs one phase (or group) of the plan by hand.
func Execute(ctx context.Context, o Options, id string, force bool) error {
	cfg, err := LoadConfig(o.StateDir)
	if err != nil {
		return err
	}
	o.ImageDir = cfg.ImageDir
	return operate(ctx, cfg, o, time.Now(), func(r *plan.Runner) error {
		_, err := r.Execute(ctx, id, force)
		return err
	})
}

// Rollback undoes phase id, or with id empty the whole operation; a whole
// rollback then removes the operation's own files: the node is as before.
func Rollback(ctx context.Context, o Options, id string, force bool) error {
	cfg, err := LoadConfig(o.StateDir)
	if err != nil {
		return err
	}
	o.ImageDir = cfg.ImageDir
	p := printer{w: o.Out}
	err = operate(ctx, cfg, o, time.Now(), func(r *plan.Runner) error {
		_, err := r.Rollback(ctx, id, force)
		return err
	})
	if err != nil || id != "" {
		return err
	}
	if err := errors.Join(removeState(cfg), removeMissingOK(o.LogFile)); err != nil {
		return err
	}
	p.say("Operation %s rolled back: the node is as it was before the install", cfg.OperationID)
	return nil
}

// removeState deletes what install keeps beside the cluster's own data.
func removeState(cfg Config) error {
	return errors.Join(os.RemoveAll(cfg.StateDir), os.RemoveAll(config.DefaultLogDir))
}

// checkNotInstalled refuses a second install over an existing one.
func checkNotInstalled(stateDir string) error {
	if c, err := LoadConfig(stateDir); err == nil {
		return fmt.Errorf("this node already has install operation %s of cluster %s: "+
			"see `gravity plan`, resume it with `gravity plan resume`, or remove it with `gravity leave --force`",
			c.OperationID, c.ClusterName)
	} else if !errors.Is(err, plan.ErrNoPlan) {
		return err
	}
	if pid, err := node.RunningPID(config.DefaultRunDir); err == nil {
		return fmt.Errorf("a gravity runtime is already running on this node (pid %d): remove it with `gravity leave --force` first", pid)
	}
	return nil
}

// prepare verifies the image and turns the options into the operation's
// config.
func prepare(ctx context.Context, o Options) (Config, *manifest.App, error) {
	meta, err := clusterimage.VerifyDir(ctx, o.ImageDir)
	if err != nil {
		return Config{}, nil, fmt.Errorf("cluster image refused: %w", err)
	}
	if meta.Delta != nil {
		return Config{}, nil, fmt.Errorf("cluster image refused: %s %s is a delta upgrade image built against %s: it upgrades a cluster that runs that version (./upgrade), it cannot install one",
			meta.Name, meta.Version, meta.Delta.From)
	}
	app, err := loadImageApp(ctx, o.ImageDir, appLocator(meta))
	if err != nil {
		return Config{}, nil, err
	}
	cfg, err := newConfig(o, meta, app.Manifest)
	return cfg, app, err
}

// AppLocator is the app package's name in the image: its only package
// that is not a base image's.
func AppLocator(meta *clusterimage.Meta) string { return appLocator(meta) }

func appLocator(meta *clusterimage.Meta) string {
	for _, p := range meta.Packages {
		if name, _, _ := strings.Cut(p.Ref, ":"); name == "gravitational.io/"+meta.Name {
			return p.Ref
		}
	}
	return "gravitational.io/" + meta.Name + ":" + meta.Version
}

func newConfig(o Options, meta *clusterimage.Meta, m *manifest.Manifest) (Config, error) {
	if o.CloudProvider != "generic" && o.CloudProvider != "onprem" {
		return Config{}, fmt.Errorf("--cloud-provider=%s is not supported: this version installs on bare metal only (generic)", o.CloudProvider)
	}
	if err := checkToken(o.Token); err != nil {
		return Config{}, err
	}
	if o.TokenTTL != 0 && o.TokenTTL < minTokenTTL {
		return Config{}, fmt.Errorf("--token-ttl=%s: a join token must live at least %s (it admits the install's own agents too); leave it out for one that does not expire", o.TokenTTL, minTokenTTL)
	}
	ip, err := advertiseAddr(o.AdvertiseAddr)
	if err != nil {
		return Config{}, err
	}
	_, baseVersion, _ := strings.Cut(meta.BaseImage, ":")
	role, err := nodeRole(m, o.Role, o.Flavor)
	if err != nil {
		return Config{}, err
	}
	c := Config{
		OperationID: randomHex(8), ClusterName: o.Cluster, AppName: meta.Name, AppVersion: meta.Version,
		AppPackage: m.Locator(), BaseVersion: orDefault(baseVersion, version.Version), StateDir: o.StateDir,
		Token: orDefault(o.Token, randomHex(16)), CloudProvider: o.CloudProvider,
		PodCIDR: orDefault(o.PodCIDR, config.DefaultPodCIDR), ServiceCIDR: orDefault(o.ServiceCIDR, config.DefaultServiceCIDR),
		Flavor: o.Flavor, SkipChecks: o.SkipChecks, Created: time.Now().UTC(),
		ImageDir: o.ImageDir,
	}
	if c.ClusterName == "" {
		c.ClusterName = clusterName()
	}
	if o.TokenTTL > 0 {
		c.TokenExpires = c.Created.Add(o.TokenTTL).Truncate(time.Second)
	}
	subnet, err := nodeSubnet(c.PodCIDR, 0)
	if err != nil {
		return Config{}, err
	}
	host, _ := os.Hostname()
	c.Nodes = []Node{{IP: ip, Hostname: host, Role: role, Master: true, PodSubnet: subnet}}
	c.InstallerAddr = installerAddr(c.Nodes)
	c.PauseImage = PinnedImage(meta, baseimage.ImagePause)
	if _, err := c.RuntimeNode(c.Nodes[0]); err != nil {
		return Config{}, err
	}
	return c, nil
}

// PinnedImage is the cluster image's image of repo as name:tag@digest, or
// "" when it has none (the runtime's default then names it by tag).
func PinnedImage(meta *clusterimage.Meta, repo string) string {
	for _, it := range meta.Images {
		if strings.HasPrefix(it.Ref, repo+":") {
			return it.Ref + "@" + it.Digest
		}
	}
	return ""
}

// installerAddr is where the installer listens for agents: on loopback
// while this node is the only one, so that nothing off the node can reach
// the listener (or try its token) at all; on the node's address once
// agents of other nodes must connect.
func installerAddr(nodes []Node) string {
	host := "127.0.0.1"
	if len(nodes) > 1 {
		host = nodes[0].IP
	}
	return net.JoinHostPort(host, fmt.Sprint(AgentPort))
}

// minTokenTTL is the shortest life a join token may be given: an install
// takes a minute or two, and its agents present the token too.
const minTokenTTL = 10 * time.Minute

// minTokenLen keeps a chosen join token from being guessable: whoever
// holds it can join a node to the cluster.
const minTokenLen = 12

// checkToken refuses a --token that is short or that a shell or a URL
// would mangle; empty means a generated one.
func checkToken(t string) error {
	if t == "" {
		return nil
	}
	if len(t) < minTokenLen {
		return fmt.Errorf("--token: a join token needs at least %d characters (it admits nodes to the cluster); leave it out for a random one", minTokenLen)
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("--token: %q is not allowed in a join token (letters, digits, '-', '_' and '.')", r)
		}
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// nodeRole picks this node's profile: --role, else the first profile of
// --flavor or of the manifest's default flavor, else the manifest's only
// profile. A manifest without profiles has one, "node", as in Gravity.
func nodeRole(m *manifest.Manifest, role, flavor string) (string, error) {
	names := []string{defaultProfile}
	if len(m.NodeProfiles) > 0 {
		names = names[:0]
		for _, p := range m.NodeProfiles {
			names = append(names, p.Name)
		}
	}
	switch {
	case role != "":
		if !contains(names, role) {
			return "", fmt.Errorf("--role=%s: the application has no such node profile (it has %s)", role, strings.Join(names, ", "))
		}
		return role, nil
	case flavor != "":
		return flavorRole(m, flavor)
	case len(names) == 1:
		return names[0], nil
	case m.Installer != nil && m.Installer.Flavors != nil && m.Installer.Flavors.Default != "":
		return flavorRole(m, m.Installer.Flavors.Default)
	}
	return "", fmt.Errorf("the application has several node profiles (%s): choose this node's with --role or --flavor", strings.Join(names, ", "))
}

// defaultProfile is the node profile of a manifest that names none.
const defaultProfile = "node"

func flavorRole(m *manifest.Manifest, flavor string) (string, error) {
	if m.Installer != nil && m.Installer.Flavors != nil {
		for _, f := range m.Installer.Flavors.Items {
			if f.Name == flavor && len(f.Nodes) > 0 {
				return f.Nodes[0].Profile, nil
			}
		}
	}
	return "", fmt.Errorf("--flavor=%s: the application has no such install flavor", flavor)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// preflightLocal runs the checks before anything is written; the report
// file, when asked for, is the only thing written even on failure.
func preflightLocal(ctx context.Context, o Options, c Config, app *manifest.App, p printer) error {
	if err := preflight.ValidateSkip(o.SkipChecks); err != nil {
		return err
	}
	req, err := Requirements(app.Manifest, c.Nodes[0].Role, c.StateDir, c.ServiceCIDR)
	if err != nil {
		return err
	}
	p.say("Execute preflight checks")
	rep, err := preflight.Run(ctx, preflight.Host{}, req, o.SkipChecks)
	if err != nil {
		return err
	}
	rep.Node = c.Nodes[0].IP
	if o.PreflightReport != "" {
		if err := rep.WriteJSON(o.PreflightReport); err != nil {
			return err
		}
	}
	PrintReport(o.Out, rep)
	return FailedChecks(rep)
}

// FailedChecks is the error of a report with failed checks, naming them;
// nil when none failed.
func FailedChecks(rep preflight.Report) error {
	failed := rep.Failed()
	if len(failed) == 0 {
		return nil
	}
	var names []string
	for _, f := range failed {
		names = append(names, f.Name)
	}
	return fmt.Errorf("preflight checks failed (%s); nothing was changed on this node. "+
		"Fix them, or skip a check with --skip-check NAME", strings.Join(names, ", "))
}

// printer writes the progress lines of the walkthrough:
// "Wed May 22 20:44:51 UTC Bootstrap master node node-1".
type printer struct{ w io.Writer }

func (p printer) say(format string, args ...any) {
	fmt.Fprintf(p.w, "%s %s\n", time.Now().UTC().Format("Mon Jan _2 15:04:05 MST"), fmt.Sprintf(format, args...))
}

// LoadPlan reads the plan `gravity plan` shows: this node's operation
// while it is unfinished, else the cluster's newest operation (a join
// driven from another node), else this node's last.
func LoadPlan(ctx context.Context, stateDir string) (*plan.Plan, error) {
	c := Config{StateDir: stateDir}
	p, err := c.PlanStore().Load(ctx)
	if err == nil && p.State() != plan.Completed {
		return p, nil
	}
	if cp, cerr := ClusterPlan(ctx, stateDir); cerr == nil && (p == nil || cp.Created.After(p.Created)) {
		return cp, nil
	}
	return p, err
}
