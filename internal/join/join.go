// Package join is `gravity join`: the joining node's side of an expand
// operation. It trusts the cluster through the join token alone (package
// jointoken), asks a master's cluster service to admit it, then drives its
// plan (package plan) on this node: its certificates from its own keys,
// the runtime package fetched from the cluster, the runtime started, the
// node Ready. The plan is kept on this node's disk and mirrored into the
// cluster's operation; an interrupted join resumes (`gravity join` again
// or `gravity plan resume`) or rolls back (`gravity plan rollback`) from it.
package join

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opengravity/gravity/internal/atomicfile"
	"github.com/opengravity/gravity/internal/clusterservice"
	"github.com/opengravity/gravity/internal/install"
	"github.com/opengravity/gravity/internal/install/preflight"
	"github.com/opengravity/gravity/internal/jointoken"
	"github.com/opengravity/gravity/internal/manifest"
	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/version"
)

// Options are `gravity join`'s flags.
type Options struct {
	// Peers are masters to try, in order (host or host:port).
	Peers         []string
	Token         string
	AdvertiseAddr string
	Role          string
	// Master: nil lets the cluster decide.
	Master     *bool
	StateDir   string
	SkipChecks []string
	Out        io.Writer
	Log        *slog.Logger
	// RetryBusy is how long to wait between tries while another operation
	// holds the cluster.
	RetryBusy time.Duration
}

// record is what a join keeps on this node until it ends: enough to
// reconnect and resume (the token is needed to talk to the service; the
// file is root's, 0600, and goes when the join ends).
type record struct {
	OperationID string                     `json:"operationID"`
	Peer        string                     `json:"peer"`
	Token       string                     `json:"token"`
	Request     clusterservice.JoinRequest `json:"request"`
	Node        clusterservice.NodeConfig  `json:"node"`
}

func recordPath(stateDir string) string { return filepath.Join(stateDir, "local", "join.json") }
func planPath(stateDir string) string   { return filepath.Join(stateDir, "local", "plan.json") }

func loadRecord(stateDir string) (*record, error) {
	data, err := os.ReadFile(recordPath(stateDir))
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", recordPath(stateDir), err)
	}
	return &r, nil
}

func (r *record) save(stateDir string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(recordPath(stateDir)), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(recordPath(stateDir), data, 0o600)
}

// Pending reports whether a join started on this node has not ended.
func Pending(stateDir string) bool {
	_, err := os.Stat(recordPath(stateDir))
	return err == nil
}

// Join adds this host to the cluster, or resumes the join it started.
func Join(ctx context.Context, o Options) error {
	start := time.Now()
	p := printer{o.Out}
	if o.RetryBusy == 0 {
		o.RetryBusy = 5 * time.Second
	}
	rec, err := loadRecord(o.StateDir)
	switch {
	case err == nil:
		p.say("Resuming operation %s", rec.OperationID)
		return resume(ctx, o, rec, p, start)
	case !errors.Is(err, os.ErrNotExist):
		return err
	}
	if err := checkFresh(o.StateDir); err != nil {
		return err
	}
	if err := preflight.ValidateSkip(o.SkipChecks); err != nil {
		return err
	}
	p.say("Connecting to cluster")
	c, err := connect(ctx, o.Peers, o.Token)
	if err != nil {
		return err
	}
	p.say("Connected to existing cluster at %s", c.Addr)
	if err := checkSkew(c.Skew, o.SkipChecks); err != nil {
		return err
	}
	req, err := request(o, c.Addr)
	if err != nil {
		return err
	}
	prof, err := c.Profile(ctx, req)
	if err != nil {
		return err
	}
	req.Role = prof.Role
	if err := checks(ctx, o, req, prof.Profile, p); err != nil {
		return err
	}
	resp, err := admit(ctx, c, req, o, p)
	if err != nil {
		return err
	}
	rec = &record{OperationID: resp.OperationID, Peer: c.Addr, Token: o.Token, Request: req, Node: resp.Node}
	rec.Request.OperationID = resp.OperationID
	if err := rec.save(o.StateDir); err != nil {
		return err
	}
	if err := (plan.FileStore{Path: planPath(o.StateDir)}).Save(ctx, resp.Plan); err != nil {
		return err
	}
	kind := "node"
	if resp.Node.Self.Master {
		kind = "master node"
	}
	p.say("Joining cluster %s as %s %s (%s), profile %s", resp.Node.ClusterName, kind, req.Hostname, req.IP, resp.Node.Self.Role)
	return run(ctx, o, rec, c, p, start)
}

// resume reconnects to the cluster the join started with and runs the
// rest of its plan.
func resume(ctx context.Context, o Options, rec *record, p printer, start time.Time) error {
	c, err := rec.connect(ctx, o)
	if err != nil {
		return err
	}
	p.say("Connected to existing cluster at %s", c.Addr)
	if _, err := c.Join(ctx, rec.Request); err != nil {
		return fmt.Errorf("resuming operation %s: %w", rec.OperationID, err)
	}
	return run(ctx, o, rec, c, p, start)
}

func run(ctx context.Context, o Options, rec *record, c *clusterservice.Client, p printer, start time.Time) error {
	r, m := runner(o, rec, c, p)
	pl, err := r.Resume(ctx)
	m.Flush()
	if err != nil {
		p.say("Operation failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
		fmt.Fprintln(o.Out, "The plan is saved. Fix the problem, then run `gravity join` again (or `gravity plan resume`); "+
			"or undo it with `gravity plan rollback`. Details: `gravity plan`")
		return err
	}
	if err := c.Complete(ctx, pl); err != nil {
		return fmt.Errorf("completing operation %s: %w", rec.OperationID, err)
	}
	if err := os.Remove(recordPath(o.StateDir)); err != nil {
		return err
	}
	p.say("Operation has completed")
	p.say("Joined cluster in %v", time.Since(start).Round(time.Millisecond))
	return nil
}

// peers are the masters a pending join may continue with: the one it
// started with, those named now, then every master the cluster had when
// it admitted the node, so that the join goes on when its first master is
// gone.
func (r *record) peers(extra []string) []string {
	out := append([]string{r.Peer}, extra...)
	for _, m := range r.Node.Masters {
		if m.IP != r.Node.Self.IP && !slices.Contains(out, m.IP) && !slices.Contains(out, clusterservice.ServiceAddr(m.IP)) {
			out = append(out, m.IP)
		}
	}
	return out
}

// connect reaches a master of the pending join's cluster and, when it is
// not the one the join started with, continues with it from then on (the
// registry step copies from it).
func (r *record) connect(ctx context.Context, o Options) (*clusterservice.Client, error) {
	c, err := connect(ctx, r.peers(o.Peers), r.Token)
	if err != nil {
		return nil, err
	}
	if c.Addr != r.Peer {
		r.Peer = c.Addr
		if err := r.save(o.StateDir); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// connect discovers the first peer that answers with a CA the token
// vouches for. A wrong token is final; an unreachable peer is not.
func connect(ctx context.Context, peers []string, token string) (*clusterservice.Client, error) {
	if token == "" {
		return nil, errors.New("--token is required: the join token from `gravity status` on a master")
	}
	if len(peers) == 0 {
		return nil, errors.New("name a master to join: gravity join <master address> --token=<token>")
	}
	var errs []string
	for _, peer := range peers {
		addr := clusterservice.ServiceAddr(peer)
		c, err := clusterservice.Discover(ctx, addr, token)
		if errors.Is(err, jointoken.ErrInvalidToken) {
			return nil, fmt.Errorf("%w: the cluster at %s does not accept it (nothing was changed on this host)", err, addr)
		}
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		return c, nil
	}
	return nil, fmt.Errorf("could not reach a cluster service (is the peer a master?): %s", strings.Join(errs, "; "))
}

// request describes this host; the advertise address defaults to the one
// this host reaches the peer from.
func request(o Options, peer string) (clusterservice.JoinRequest, error) {
	ip := o.AdvertiseAddr
	if ip == "" {
		host, _, _ := net.SplitHostPort(peer)
		conn, err := net.Dial("udp", net.JoinHostPort(host, "9"))
		if err != nil {
			return clusterservice.JoinRequest{}, fmt.Errorf("finding the advertise address (set --advertise-addr): %w", err)
		}
		ip = conn.LocalAddr().(*net.UDPAddr).IP.String()
		conn.Close()
	}
	if net.ParseIP(ip) == nil {
		return clusterservice.JoinRequest{}, fmt.Errorf("--advertise-addr=%s: not an IP address", ip)
	}
	host, err := os.Hostname()
	if err != nil {
		return clusterservice.JoinRequest{}, err
	}
	return clusterservice.JoinRequest{Hostname: host, IP: ip, Role: o.Role, Master: o.Master, Version: version.Version}, nil
}

// checks runs the host checks a node must pass before it is admitted.
func checks(ctx context.Context, o Options, req clusterservice.JoinRequest, profile *manifest.NodeProfile, p printer) error {
	p.say("Execute preflight checks")
	m := &manifest.Manifest{}
	if profile != nil {
		m.NodeProfiles = []manifest.NodeProfile{*profile}
	}
	// The cluster's service network is not known before admission: the
	// default is checked (a host with a default route passes either way).
	reqs, err := install.Requirements(m, req.Role, o.StateDir, "")
	if err != nil {
		return err
	}
	rep, err := preflight.Run(ctx, preflight.Host{}, reqs, o.SkipChecks)
	if err != nil {
		return err
	}
	rep.Node = req.IP
	install.PrintReport(o.Out, rep)
	return install.FailedChecks(rep)
}

// admit asks for admission, waiting while another operation holds the
// cluster.
func admit(ctx context.Context, c *clusterservice.Client, req clusterservice.JoinRequest, o Options, p printer) (*clusterservice.JoinResponse, error) {
	said := false
	for {
		resp, err := c.Join(ctx, req)
		if !errors.Is(err, clusterservice.ErrBusy) {
			return resp, err
		}
		if !said {
			p.say("Waiting for another operation to complete at %s (%v)", c.Addr, strings.TrimPrefix(err.Error(), clusterservice.ErrBusy.Error()+": "))
			said = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(o.RetryBusy):
		}
	}
}

// MaxClockSkew is how far this host's clock may be from the cluster's:
// certificates are backdated a few minutes, and etcd and the API servers'
// leases want far less.
const MaxClockSkew = 30 * time.Second

// checkSkew refuses a host whose clock is too far from the cluster's
// (the preflight "time" check, which --skip-check=time skips).
func checkSkew(skew time.Duration, skip []string) error {
	if slices.Contains(skip, "time") || skew.Abs() <= MaxClockSkew {
		return nil
	}
	dir := "behind"
	if skew < 0 {
		dir = "ahead of"
	}
	return fmt.Errorf("this host's clock is %v %s the cluster's (at most %v): set it, or better run NTP on every node; "+
		"nothing was changed on this host", skew.Abs().Round(time.Second), dir, MaxClockSkew)
}

// checkFresh refuses a host that is in a cluster already.
func checkFresh(stateDir string) error {
	for _, path := range []string{filepath.Join(stateDir, "config", "node.yaml"), filepath.Join(stateDir, "local", "operation.json")} {
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("this host is already part of a cluster (%s exists): run `gravity leave` first", path)
		}
	}
	return nil
}

type printer struct{ w io.Writer }

func (p printer) say(format string, args ...any) {
	fmt.Fprintf(p.w, "%s %s\n", time.Now().UTC().Format("Mon Jan _2 15:04:05 MST"), fmt.Sprintf(format, args...))
}
