package install

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/install/agent"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/plan"
)

// operate runs fn with the operation's plan runner once every node's
// agent has connected to this installer, then reports the outcome.
func operate(ctx context.Context, cfg Config, o Options, start time.Time, fn func(*plan.Runner) error) error {
	p := printer{w: o.Out}
	logw, closeLog, err := openLog(o.LogFile)
	if err != nil {
		return err
	}
	defer closeLog()
	srv, creds, stop, err := startServer(cfg, o.Log)
	if err != nil {
		return err
	}
	defer stop()
	agentCtx, stopAgent := context.WithCancel(ctx)
	defer stopAgent()
	agentDone, err := startLocalAgent(agentCtx, creds, cfg, logw)
	if err != nil {
		return err
	}
	defer func() { stopAgent(); <-agentDone }()
	if err := waitAgents(ctx, srv, cfg, p); err != nil {
		return err
	}
	p.say("All agents have connected!")
	r := &plan.Runner{
		Store:     planStore(cfg, o.Log),
		Executors: executors(cfg, srv, o.ImageDir, hookOutput{p: p}, logw),
		Progress: func(e plan.Event) {
			if e.State == plan.InProgress {
				p.say("%s", e.Phase.Description)
			}
		},
	}
	err = fn(r)
	if err != nil {
		p.say("Operation failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
		fmt.Fprintf(o.Out, "The plan is saved. Fix the problem, then `gravity plan resume`; or undo with `gravity plan rollback`. "+
			"Details: `gravity plan` and %s\n", o.LogFile)
	}
	return err
}

// planStore keeps the plan on this disk and, once /rbac made the cluster's
// resource definitions, in the cluster too.
func planStore(cfg Config, log *slog.Logger) cluster.Store {
	return cluster.Store{
		Local: cfg.PlanStore(),
		Ready: func(p *plan.Plan) bool {
			ph, err := p.Find(phaseRBAC)
			return err == nil && ph.StateOf() == plan.Completed
		},
		Clients: func() (cluster.Clients, error) { return step{cfg: cfg}.clients() },
		Log:     log,
	}
}

func openLog(path string) (io.Writer, func(), error) {
	if path == "" {
		return io.Discard, func() {}, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// hookOutput prefixes hook logs for the install output.
type hookOutput struct{ p printer }

func (h hookOutput) Write(b []byte) (int, error) { return h.p.w.Write(b) }

// agentCreds is what the local agent reads from its stdin: nothing of it
// touches the disk.
type agentCreds struct {
	Addr     string `json:"addr"`
	Token    string `json:"token"`
	CA       []byte `json:"ca"`
	Cert     []byte `json:"cert"`
	Key      []byte `json:"key"`
	IP       string `json:"ip"`
	Role     string `json:"role"`
	LogLevel string `json:"logLevel,omitempty"`
}

// startServer listens for agents with a CA made for this run of the
// installer: agents trust it and it trusts only certificates it issued.
func startServer(cfg Config, log *slog.Logger) (*agent.Server, agentCreds, func(), error) {
	ca, err := pki.NewCA("gravity installer "+cfg.OperationID, 48*time.Hour, time.Now())
	if err != nil {
		return nil, agentCreds{}, nil, err
	}
	host, _, _ := net.SplitHostPort(cfg.InstallerAddr)
	srvKP, err := ca.Issue(pki.Request{CommonName: "installer", IPs: []net.IP{net.ParseIP(host)}, Usages: pki.UsageServer, Validity: 47 * time.Hour})
	if err != nil {
		return nil, agentCreds{}, nil, err
	}
	// The agent's certificate names its node: the installer takes an
	// agent's hello only for the node its certificate is issued for.
	agentKP, err := ca.Issue(pki.Request{CommonName: "agent", IPs: []net.IP{net.ParseIP(cfg.Nodes[0].IP)},
		Usages: pki.UsageClient, Validity: 47 * time.Hour})
	if err != nil {
		return nil, agentCreds{}, nil, err
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{srvKP.TLSCertificate()}, ClientCAs: ca.Pool(),
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
	srv, err := agent.NewServer(agent.ServerConfig{TLS: tlsCfg, Token: cfg.Token, TokenExpires: cfg.TokenExpires, Log: log})
	if err != nil {
		return nil, agentCreds{}, nil, err
	}
	ln, err := net.Listen("tcp", cfg.InstallerAddr)
	if err != nil {
		return nil, agentCreds{}, nil, fmt.Errorf("installer: %w", err)
	}
	go func() { _ = srv.Serve(ln) }()
	key, err := agentKP.KeyPEM()
	if err != nil {
		srv.Stop()
		return nil, agentCreds{}, nil, err
	}
	creds := agentCreds{Addr: cfg.InstallerAddr, Token: cfg.Token, CA: ca.CertPEM(), Cert: agentKP.CertPEM(), Key: key,
		IP: cfg.Nodes[0].IP, Role: cfg.Nodes[0].Role}
	return srv, creds, srv.Stop, nil
}

// startLocalAgent starts this node's agent as its own process, as on any
// other node; it dies with the installer (PDEATHSIG) rather than linger.
func startLocalAgent(ctx context.Context, creds agentCreds, cfg Config, logw io.Writer) (<-chan struct{}, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	stdin, err := json.Marshal(creds)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, "install", "agent")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytesReader(stdin), logw, logw
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the install agent: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return done, nil
}

func waitAgents(ctx context.Context, srv *agent.Server, cfg Config, p printer) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	peers, err := srv.WaitAgents(ctx, len(cfg.Nodes))
	if err != nil {
		return fmt.Errorf("waiting for install agents: %w", err)
	}
	for _, peer := range peers {
		info := peer.Info()
		if _, err := cfg.Node(info.AdvertiseIP); err != nil {
			return err
		}
		p.say("Successfully added %q node on %s", info.Role, info.AdvertiseIP)
	}
	return nil
}

// RunAgent is `gravity install agent`: it reads its credentials from
// stdin and serves the installer until ctx ends.
func RunAgent(ctx context.Context, stdin io.Reader, log *slog.Logger) error {
	var c agentCreds
	if err := json.NewDecoder(stdin).Decode(&c); err != nil {
		return fmt.Errorf("install agent: reading credentials: %w", err)
	}
	kp, err := pki.ParseKeyPair(c.Cert, c.Key)
	if err != nil {
		return err
	}
	caCert, err := pki.ParseCertificatePEM(c.CA)
	if err != nil {
		return err
	}
	pool := x509Pool(caCert)
	host, _, _ := net.SplitHostPort(c.Addr)
	info, err := agent.LocalNodeInfo(c.IP, c.Role)
	if err != nil {
		return err
	}
	err = agent.RunAgent(ctx, agent.AgentConfig{Addr: c.Addr, Token: c.Token, Info: info, Log: log,
		TLS: &tls.Config{Certificates: []tls.Certificate{kp.TLSCertificate()}, RootCAs: pool, ServerName: host,
			MinVersion: tls.VersionTLS13}})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
