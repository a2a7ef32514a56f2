package agent

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Keepalive settings shared by both sides: a node that vanishes without a
// TCP reset must still be noticed, or its pending Runs would hang forever.
const (
	keepaliveTime    = 20 * time.Second
	keepaliveTimeout = 10 * time.Second
)

// errReplaced ends a peer whose node connected again.
var errReplaced = errors.New("replaced by a newer connection from the same node")

// ServerConfig configures the installer's end of the protocol.
type ServerConfig struct {
	// TLS holds the server certificate and must require and verify client
	// certificates against ClientCAs.
	TLS *tls.Config
	// Token is the join token every agent must present; from
	// TokenExpires on (when set) it admits no one.
	Token        string
	TokenExpires time.Time
	Log          *slog.Logger
	// now is the clock, for tests.
	now func() time.Time
}

// Server accepts agent connections. It lives in the installer.
type Server struct {
	log     *slog.Logger
	token   [sha256.Size]byte
	expires time.Time
	now     func() time.Time
	grpc    *grpc.Server

	mu    sync.Mutex
	peers map[string]*Peer // by NodeInfo.AdvertiseIP
	// changed is closed and replaced whenever peers changes, so waiters
	// can block without polling.
	changed chan struct{}
}

// NewServer checks cfg and prepares a server; call Serve to accept agents.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.TLS == nil {
		return nil, errors.New("agent server: no TLS configuration")
	}
	// The token alone is a shared secret that may end up in shell history;
	// the client certificate is what really identifies a node, so refuse to
	// run without it rather than silently accept anyone with the token.
	if cfg.TLS.ClientAuth != tls.RequireAndVerifyClientCert || cfg.TLS.ClientCAs == nil {
		return nil, errors.New("agent server: TLS must set ClientAuth to RequireAndVerifyClientCert and ClientCAs")
	}
	if cfg.Token == "" {
		return nil, errors.New("agent server: empty join token")
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		log:     log.With("component", "agent-server"),
		token:   sha256.Sum256([]byte(cfg.Token)),
		expires: cfg.TokenExpires,
		now:     cfg.now,
		peers:   make(map[string]*Peer),
		changed: make(chan struct{}),
	}
	s.grpc = grpc.NewServer(
		grpc.Creds(credentials.NewTLS(cfg.TLS.Clone())),
		grpc.MaxRecvMsgSize(maxMessage),
		grpc.MaxSendMsgSize(maxMessage),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: keepaliveTime, Timeout: keepaliveTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveTime / 2, PermitWithoutStream: true}),
	)
	s.grpc.RegisterService(&serviceDesc, s)
	return s, nil
}

// Serve accepts agents on ln until Stop.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.grpc.Serve(ln); err != nil {
		return fmt.Errorf("agent server on %s: %w", ln.Addr(), err)
	}
	return nil
}

// Stop closes the listener and every agent connection; pending Runs fail.
func (s *Server) Stop() {
	s.grpc.Stop()
	s.mu.Lock()
	peers := s.peers
	s.peers = make(map[string]*Peer)
	s.notifyLocked()
	s.mu.Unlock()
	for _, p := range peers {
		p.close(errors.New("installer stopped"))
	}
}

// Peers returns the connected agents ordered by advertise IP.
func (s *Server) Peers() []*Peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshotLocked()
}

// Peer returns the agent connected for advertiseIP, or nil.
func (s *Server) Peer(advertiseIP string) *Peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peers[advertiseIP]
}

// WaitAgents blocks until at least n agents are connected and returns them
// ordered by advertise IP.
func (s *Server) WaitAgents(ctx context.Context, n int) ([]*Peer, error) {
	for {
		s.mu.Lock()
		peers, changed := s.snapshotLocked(), s.changed
		s.mu.Unlock()
		if len(peers) >= n {
			return peers, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for %d agents (%d connected): %w", n, len(peers), ctx.Err())
		}
	}
}

func (s *Server) snapshotLocked() []*Peer {
	out := make([]*Peer, 0, len(s.peers))
	for _, p := range s.peers {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].info.AdvertiseIP < out[j].info.AdvertiseIP })
	return out
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// authenticate checks the join token before anything else is read, so an
// agent without it can neither register nor be sent a command.
func (s *Server) authenticate(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(tokenHeader)
	if len(vals) != 1 {
		return status.Error(codes.Unauthenticated, "missing join token")
	}
	// Hashing first makes the comparison independent of the token length too.
	got := sha256.Sum256([]byte(vals[0]))
	if subtle.ConstantTimeCompare(got[:], s.token[:]) != 1 {
		return status.Error(codes.Unauthenticated, "invalid join token")
	}
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	if !s.expires.IsZero() && !now().Before(s.expires) {
		return status.Errorf(codes.Unauthenticated, "the join token expired at %s", s.expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkIdentity refuses an agent whose hello names a node its client
// certificate was not issued for: the certificate, not the agent's word,
// decides which node's commands a connection receives.
func checkIdentity(ctx context.Context, advertiseIP string) error {
	ip := net.ParseIP(advertiseIP)
	if ip == nil {
		return status.Errorf(codes.InvalidArgument, "advertise IP %q is not an IP address", advertiseIP)
	}
	p, ok := grpcpeer.FromContext(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "no peer information")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return status.Error(codes.Unauthenticated, "no client certificate")
	}
	for _, certIP := range ti.State.PeerCertificates[0].IPAddresses {
		if certIP.Equal(ip) {
			return nil
		}
	}
	return status.Errorf(codes.PermissionDenied, "the client certificate is not issued for node %s", advertiseIP)
}

// connect serves one agent connection for as long as it lasts.
func (s *Server) connect(stream grpc.ServerStream) error {
	if err := s.authenticate(stream.Context()); err != nil {
		s.log.Warn("refused agent", "error", err)
		return err
	}
	var hello agentMsg
	if err := stream.RecvMsg(&hello); err != nil {
		return fmt.Errorf("receive agent hello: %w", err)
	}
	if hello.Hello == nil || hello.Hello.AdvertiseIP == "" {
		return status.Error(codes.InvalidArgument, "first message must be a hello with an advertise IP")
	}
	if err := checkIdentity(stream.Context(), hello.Hello.AdvertiseIP); err != nil {
		s.log.Warn("refused agent", "node", hello.Hello.AdvertiseIP, "error", err)
		return err
	}
	p := newPeer(*hello.Hello, stream, s.log)
	if err := p.send(&serverMsg{Welcome: true}); err != nil {
		return fmt.Errorf("welcome agent %s: %w", p.info.AdvertiseIP, err)
	}
	s.register(p)
	errc := make(chan error, 1)
	go func() { errc <- p.receive() }()
	var err error
	select {
	case err = <-errc:
	case <-p.done:
		// Replaced or stopped: returning ends the stream, which unblocks
		// the receiving goroutine.
		err = p.cause()
	}
	s.unregister(p)
	p.close(fmt.Errorf("agent disconnected: %w", err))
	s.log.Info("agent disconnected", "node", p.info.AdvertiseIP, "error", err)
	if errors.Is(err, errReplaced) {
		return status.Error(codes.Aborted, errReplaced.Error())
	}
	return nil
}

func (s *Server) register(p *Peer) {
	s.mu.Lock()
	old := s.peers[p.info.AdvertiseIP]
	s.peers[p.info.AdvertiseIP] = p
	s.notifyLocked()
	s.mu.Unlock()
	if old != nil {
		old.close(errReplaced)
	}
	s.log.Info("agent connected", "node", p.info.AdvertiseIP, "hostname", p.info.Hostname,
		"role", p.info.Role, "version", p.info.Version, "replaced", old != nil)
}

// unregister removes p unless a newer connection already took its place.
func (s *Server) unregister(p *Peer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peers[p.info.AdvertiseIP] == p {
		delete(s.peers, p.info.AdvertiseIP)
		s.notifyLocked()
	}
}
