// Package sshnode is the SSH service of every node, a runtime component
// (`gravity runtime ssh`, :3022): shells and commands on the node for `tsh
// ssh`, which reach it only through the access proxy on the masters.
//
// Contract: the node proves itself with a host certificate of the
// cluster's hosts CA, which it asks the cluster API for with its kubelet's
// client certificate (the CA's key stays on masters); it accepts only
// certificates of the users CA that the proxy made for the hop
// (access.ExtProxied) and whose principal is the login asked for, so a
// user's own certificate, checked by no one for revocation, never logs in
// here directly.
package sshnode

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opengravity/gravity/internal/access"
	"github.com/opengravity/gravity/internal/atomicfile"
	"github.com/opengravity/gravity/internal/clusterapi"
)

// Config is the service's.
type Config struct {
	Addr string
	// Dir keeps the host key and certificate (a secrets directory).
	Dir      string
	Hostname string
	// APIs are the masters' cluster API addresses (host:port), asked in
	// turn for the host certificate.
	APIs []string
	// ClientTLS carries the kubelet's client certificate and the cluster
	// CA.
	ClientTLS *tls.Config
	Log       *slog.Logger
	Now       func() time.Time
}

// Service is a node's SSH service.
type Service struct {
	cfg    Config
	key    ssh.Signer
	userCA ssh.PublicKey
	cert   *ssh.Certificate
}

// New makes the service, with its host key (made on the first start).
func New(cfg Config) (*Service, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	key, err := hostKey(filepath.Join(cfg.Dir, "host_key"))
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, key: key}, nil
}

// hostKey reads the node's SSH host key, or makes it.
func hostKey(path string) (ssh.Signer, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		block, err := ssh.MarshalPrivateKey(priv, "")
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		data = pem.EncodeToMemory(block)
		if err := atomicfile.CreateFile(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("saving the SSH host key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("reading the SSH host key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("SSH host key %s: %w", path, err)
	}
	return s, nil
}

// certify gets the host certificate and the users CA from a master.
func (s *Service) certify(ctx context.Context) error {
	req := clusterapi.HostCertRequest{PublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.key.PublicKey()))), Hostname: s.cfg.Hostname}
	var errs []error
	for _, addr := range s.cfg.APIs {
		var resp clusterapi.HostCertResponse
		err := clusterapi.NewClient(addr, s.cfg.ClientTLS).Do(ctx, "POST", clusterapi.PathHostCert, req, &resp)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pub, err := access.ParseAuthorizedKey(resp.Certificate)
		if err != nil {
			return err
		}
		cert, ok := pub.(*ssh.Certificate)
		if !ok {
			return errors.New("the cluster API answered a plain key, not a host certificate")
		}
		userCA, err := access.ParseAuthorizedKey(resp.UserCA)
		if err != nil {
			return err
		}
		s.cert, s.userCA = cert, userCA
		return nil
	}
	return fmt.Errorf("no master signed the SSH host certificate: %w", errors.Join(errs...))
}

// Run serves until ctx ends. It listens at once (ready is called then),
// so that the node's runtime is not held up by the masters; connections
// wait in the backlog until a master has signed its host certificate,
// which it retries while the masters' API is not up yet.
func (s *Service) Run(ctx context.Context, ready func()) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("SSH service: %w", err)
	}
	if ready != nil {
		ready()
	}
	for {
		err := s.certify(ctx)
		if err == nil {
			break
		}
		s.cfg.Log.Warn("SSH service waiting for its host certificate", "error", err.Error())
		select {
		case <-ctx.Done():
			ln.Close()
			return nil
		case <-time.After(5 * time.Second):
		}
	}
	certSigner, err := ssh.NewCertSigner(s.cert, s.key)
	if err != nil {
		return err
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: s.authenticate, ServerVersion: "SSH-2.0-gravity-node"}
	cfg.AddHostKey(certSigner)
	s.cfg.Log.Info("SSH service serving", "addr", s.cfg.Addr, "principals", s.cert.ValidPrincipals,
		"expires", time.Unix(int64(s.cert.ValidBefore), 0).UTC())
	return access.Serve(ctx, ln, cfg, s.cfg.Log, "SSH service", func(conn *ssh.ServerConn, nc ssh.NewChannel) { s.serve(ctx, conn, nc) })
}

func (s *Service) authenticate(conn ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	cert, ok := key.(*ssh.Certificate)
	if !ok {
		return nil, errors.New("only certificates of the cluster's proxy log in here")
	}
	if _, ok := cert.Extensions[access.ExtProxied]; !ok {
		s.cfg.Log.Warn("SSH service: direct login refused", "user", cert.KeyId, "remote", conn.RemoteAddr().String())
		return nil, errors.New("direct logins are refused: go through the cluster's proxy (tsh ssh)")
	}
	perms, err := access.UserChecker(s.userCA, s.cfg.Now).Authenticate(conn, key)
	if err != nil {
		return nil, err
	}
	if perms == nil {
		perms = &ssh.Permissions{}
	}
	perms.Extensions = map[string]string{"user": cert.KeyId}
	return perms, nil
}

func (s *Service) serve(ctx context.Context, conn *ssh.ServerConn, nc ssh.NewChannel) {
	if nc.ChannelType() != "session" {
		_ = nc.Reject(ssh.UnknownChannelType, "sessions only")
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	var user string
	if conn.Permissions != nil {
		user = conn.Permissions.Extensions["user"]
	}
	s.cfg.Log.Info("session", "user", user, "login", conn.User(), "remote", conn.RemoteAddr().String())
	newSession(ctx, s.cfg.Log, conn.User(), ch).serve(reqs)
}
