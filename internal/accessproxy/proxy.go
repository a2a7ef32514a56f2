// Package accessproxy is the access proxy, a runtime component on every
// master (`gravity runtime access-proxy`): the SSH proxy on :3023, through
// which `tsh ssh` reaches the SSH service of every node, and the Kubernetes
// proxy on :3026, through which `kubectl` reaches the API with a `tsh
// login` certificate.
//
// Contract: every SSH channel and every Kubernetes request is checked
// against the user as the cluster has them at that moment (the record the
// certificate was issued for still exists, its roles allow the login, the
// node, the Kubernetes groups), so a user removed or changed loses access
// at once, saved certificate or not. Kubernetes sees the user impersonated
// with their roles' kubernetes_groups, never the proxy's own rights.
// Interactive sessions are recorded into the cluster; sessions, commands
// and refusals are audited.
package accessproxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"
	"k8s.io/client-go/rest"

	"github.com/opengravity/gravity/internal/access"
	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/resources"
)

// Config is the proxy's.
type Config struct {
	// IP is the master's address, which both proxies listen on.
	IP          net.IP
	Hostname    string
	ClusterName string
	// Clients reach the cluster with the cluster service's identity: the
	// proxy reads users, roles and the access CAs, and records sessions.
	Clients cluster.Clients
	// Kube is how the Kubernetes proxy reaches the API server; its
	// identity must be allowed to impersonate.
	Kube *rest.Config
	// ServingCert is the master's certificate of the cluster CA, which
	// clients verify the Kubernetes proxy by.
	ServingCert tls.Certificate
	Log         *slog.Logger
	Now         func() time.Time
	// SSHAddr and KubeAddr override the ports (tests).
	SSHAddr, KubeAddr string
}

// Proxy serves both proxies.
type Proxy struct {
	cfg    Config
	users  *pki.CA
	hosts  *pki.CA
	hostCA ssh.PublicKey
	userCA ssh.PublicKey
}

// New makes the proxy.
func New(cfg Config) (*Proxy, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SSHAddr == "" {
		cfg.SSHAddr = net.JoinHostPort(cfg.IP.String(), strconv.Itoa(access.ProxySSHPort))
	}
	if cfg.KubeAddr == "" {
		cfg.KubeAddr = net.JoinHostPort(cfg.IP.String(), strconv.Itoa(access.KubePort))
	}
	return &Proxy{cfg: cfg}, nil
}

// loadCAs reads (or, on a new cluster, makes) the access CAs.
func (p *Proxy) loadCAs(ctx context.Context) error {
	cfg := p.cfg
	var err error
	if p.users, err = cluster.Authority(ctx, cfg.Clients, cluster.AuthorityUsers, cfg.ClusterName, cfg.Now()); err != nil {
		return err
	}
	if p.hosts, err = cluster.Authority(ctx, cfg.Clients, cluster.AuthorityHosts, cfg.ClusterName, cfg.Now()); err != nil {
		return err
	}
	for _, k := range []struct {
		ca  *pki.CA
		dst *ssh.PublicKey
	}{{p.users, &p.userCA}, {p.hosts, &p.hostCA}} {
		s, err := access.Signer(k.ca)
		if err != nil {
			return err
		}
		*k.dst = s.PublicKey()
	}
	return nil
}

// Run serves until ctx ends. Both proxies listen at once (ready is
// called then), so that the master's runtime is not held up; connections
// wait in the backlog until the access CAs are read, which is retried
// while the API server is not up yet.
func (p *Proxy) Run(ctx context.Context, ready func()) error {
	sshLn, err := net.Listen("tcp", p.cfg.SSHAddr)
	if err != nil {
		return fmt.Errorf("SSH proxy: %w", err)
	}
	rawKube, err := net.Listen("tcp", p.cfg.KubeAddr)
	if err != nil {
		sshLn.Close()
		return fmt.Errorf("Kubernetes proxy: %w", err)
	}
	if ready != nil {
		ready()
	}
	for {
		err := p.loadCAs(ctx)
		if err == nil {
			break
		}
		p.cfg.Log.Warn("access proxy waiting for the access CAs", "error", err.Error())
		select {
		case <-ctx.Done():
			sshLn.Close()
			rawKube.Close()
			return nil
		case <-time.After(5 * time.Second):
		}
	}
	sshCfg, err := p.sshServerConfig()
	if err != nil {
		sshLn.Close()
		rawKube.Close()
		return err
	}
	kubeLn := p.kubeListener(rawKube)
	p.cfg.Log.Info("access proxy serving", "ssh", p.cfg.SSHAddr, "kubernetes", p.cfg.KubeAddr)
	done := make(chan error, 2)
	go func() { done <- p.serveSSH(ctx, sshLn, sshCfg) }()
	srv, err := p.kubeServer()
	if err != nil {
		sshLn.Close()
		kubeLn.Close()
		return err
	}
	go func() { done <- srv.Serve(kubeLn) }()
	select {
	case err = <-done:
	case <-ctx.Done():
	}
	sshLn.Close()
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return errors.Join(err, srv.Shutdown(shutdown))
}

// userAccess is what a user may do now, read from the cluster.
type userAccess struct {
	name  string
	roles []resources.RoleSpec
}

// errRevoked is a certificate whose user is gone or was made again.
var errRevoked = errors.New("was issued to a user who no longer exists: log in again")

// checkUser reads user's record and roles: a certificate issued for
// another record of the same name (uid) is refused.
func (p *Proxy) checkUser(ctx context.Context, name, uid string) (*userAccess, error) {
	u, got, err := cluster.GetUser(ctx, p.cfg.Clients, name)
	if errors.Is(err, cluster.ErrNotFound) || (err == nil && got != uid) {
		return nil, fmt.Errorf("the certificate of %s %w", name, errRevoked)
	}
	if err != nil {
		return nil, err
	}
	roles, err := cluster.RoleSpecs(ctx, p.cfg.Clients, u.Spec.(*resources.UserSpec).Roles)
	if err != nil {
		return nil, err
	}
	return &userAccess{name: name, roles: roles}, nil
}

// audit records an event; a failure to record is logged.
func (p *Proxy) audit(user, from, code, event, msg string, fields map[string]string) {
	e := cluster.AuditEvent{Time: p.cfg.Now().UTC(), Code: code, Event: event, User: user, From: from, Message: msg, Fields: fields}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cluster.RecordEvent(ctx, p.cfg.Clients, e); err != nil {
		p.cfg.Log.Error("audit event not recorded", "event", event, "user", user, "error", err.Error())
	}
	p.cfg.Log.Info("audit", "event", event, "user", user, "from", from, "message", msg)
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func host(addr net.Addr) string {
	h, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return h
}
