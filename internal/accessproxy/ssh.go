package accessproxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opengravity/gravity/internal/access"
	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/clusterapi"
	"github.com/opengravity/gravity/internal/identity"
)

// Permission extensions the SSH proxy's authentication passes on.
const (
	permUser = "user"
	permUID  = "uid"
)

// hostCertTTL: the proxy makes itself a new host key on every start.
const proxyHostCertTTL = 365 * 24 * time.Hour

func (p *Proxy) sshServerConfig() (*ssh.ServerConfig, error) {
	checker := access.UserChecker(p.userCA, p.cfg.Now)
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(conn ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			cert, ok := key.(*ssh.Certificate)
			if !ok {
				return nil, errors.New("a certificate of the cluster's users CA is required: run tsh login")
			}
			if _, ok := cert.Extensions[access.ExtProxied]; ok {
				return nil, errors.New("a proxy's certificate does not log in to the proxy")
			}
			// The CA and the validity are checked here; the login (and
			// the user, the node) when a session is asked for, so that a
			// refusal can say why.
			principal := conn.User()
			if len(cert.ValidPrincipals) > 0 && !slices.Contains(cert.ValidPrincipals, principal) {
				principal = cert.ValidPrincipals[0]
			}
			if !checker.IsUserAuthority(cert.SignatureKey) {
				return nil, errors.New("the certificate is not of the cluster's users CA")
			}
			if err := checker.CheckCert(principal, cert); err != nil {
				p.cfg.Log.Warn("SSH proxy: certificate refused", "user", cert.KeyId, "login", conn.User(), "error", err.Error())
				return nil, err
			}
			return &ssh.Permissions{Extensions: map[string]string{permUser: cert.KeyId, permUID: cert.Extensions[access.ExtUserUID]}}, nil
		},
		ServerVersion: "SSH-2.0-gravity-proxy",
	}
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromSigner(key)
	if err != nil {
		return nil, err
	}
	principals := []string{p.cfg.IP.String()}
	if p.cfg.Hostname != "" {
		principals = append(principals, p.cfg.Hostname)
	}
	cert, err := access.SignHost(p.hosts, signer.PublicKey(), principals, proxyHostCertTTL, p.cfg.Now())
	if err != nil {
		return nil, err
	}
	certSigner, err := ssh.NewCertSigner(cert, signer)
	if err != nil {
		return nil, err
	}
	cfg.AddHostKey(certSigner)
	return cfg, nil
}

func (p *Proxy) serveSSH(ctx context.Context, ln net.Listener, cfg *ssh.ServerConfig) error {
	return access.Serve(ctx, ln, cfg, p.cfg.Log, "SSH proxy", func(conn *ssh.ServerConn, nc ssh.NewChannel) {
		if nc.ChannelType() != access.ChannelSession {
			_ = nc.Reject(ssh.UnknownChannelType, "the proxy opens sessions on nodes only ("+access.ChannelSession+")")
			return
		}
		p.session(ctx, conn, nc)
	})
}

// session checks a request for a session on a node and relays it: the
// proxy logs in to the node with a certificate it makes for this hop.
func (p *Proxy) session(ctx context.Context, conn *ssh.ServerConn, nc ssh.NewChannel) {
	user, login, from := conn.Permissions.Extensions[permUser], conn.User(), host(conn.RemoteAddr())
	var req access.SessionRequest
	if err := ssh.Unmarshal(nc.ExtraData(), &req); err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, "the session names no node")
		return
	}
	target := req.Node
	node, client, err := p.dialNode(ctx, user, conn.Permissions.Extensions[permUID], login, target)
	if err != nil {
		p.audit(user, from, "T3001W", "session.rejected", err.Error(), map[string]string{"node": target, "login": login})
		_ = nc.Reject(ssh.Prohibited, err.Error())
		return
	}
	defer client.Close()
	nodeCh, nodeReqs, err := client.OpenChannel("session", nil)
	if err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, fmt.Sprintf("node %s: %v", node.Name, err))
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		nodeCh.Close()
		return
	}
	s := &relay{p: p, user: user, login: login, from: from, node: node, start: p.cfg.Now()}
	s.run(ch, reqs, nodeCh, nodeReqs)
}

// dialNode finds target among the cluster's nodes, checks that user may
// reach it as login now, and logs in to its SSH service.
func (p *Proxy) dialNode(ctx context.Context, user, uid, login, target string) (clusterapi.NodeInfo, *ssh.Client, error) {
	var none clusterapi.NodeInfo
	u, err := p.checkUser(ctx, user, uid)
	if err != nil {
		return none, nil, err
	}
	if !slices.Contains(identity.Logins(u.roles), login) {
		return none, nil, fmt.Errorf("login %q is not allowed by the roles of %s (allowed: %v)", login, user, identity.Logins(u.roles))
	}
	nodes, err := cluster.ListNodes(ctx, p.cfg.Clients)
	if err != nil {
		return none, nil, err
	}
	var node *clusterapi.NodeInfo
	for _, n := range nodes {
		if n.Name == target || n.Address == target || n.Hostname == target {
			node = &clusterapi.NodeInfo{Name: n.Name, Hostname: n.Hostname, Address: n.Address, Master: n.Master, Labels: clusterapi.NodeLabels(n)}
			break
		}
	}
	if node == nil {
		return none, nil, fmt.Errorf("no node %q in the cluster", target)
	}
	if !identity.NodeAllowed(u.roles, node.Labels) {
		return none, nil, fmt.Errorf("the roles of %s do not allow node %s", user, node.Name)
	}
	key, err := newKey()
	if err != nil {
		return none, nil, err
	}
	signer, err := ssh.NewSignerFromSigner(key)
	if err != nil {
		return none, nil, err
	}
	cert, err := access.ProxyCert(p.users, signer.PublicKey(), user, login, p.cfg.Now())
	if err != nil {
		return none, nil, err
	}
	certSigner, err := ssh.NewCertSigner(cert, signer)
	if err != nil {
		return none, nil, err
	}
	addr := net.JoinHostPort(node.Address, strconv.Itoa(access.NodeSSHPort))
	client, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: login, Auth: []ssh.AuthMethod{ssh.PublicKeys(certSigner)},
		HostKeyCallback: access.HostChecker(p.hostCA), Timeout: 5 * time.Second})
	if err != nil {
		return none, nil, fmt.Errorf("node %s (%s) does not answer: %v", node.Name, addr, err)
	}
	return *node, client, nil
}

// relay passes one session between the client and the node, recording
// what the node sends when the session has a terminal.
type relay struct {
	p                 *Proxy
	user, login, from string
	node              clusterapi.NodeInfo
	start             time.Time
	id                string
	mu                sync.Mutex
	interactive       bool
	rec               cluster.Recording
	recorded          int
	exitStatus        string
}

func (s *relay) run(ch ssh.Channel, reqs <-chan *ssh.Request, nodeCh ssh.Channel, nodeReqs <-chan *ssh.Request) {
	defer ch.Close()
	defer nodeCh.Close()
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	s.id = hex.EncodeToString(idb[:])
	var wg sync.WaitGroup
	// Client requests (pty-req, env, shell, exec, window-change, signal)
	// go to the node as they are.
	go func() {
		for r := range reqs {
			s.observe(r)
			ok, err := nodeCh.SendRequest(r.Type, r.WantReply, r.Payload)
			if err != nil {
				ok = false
			}
			if r.WantReply {
				_ = r.Reply(ok, nil)
			}
		}
	}()
	// The node's requests (exit-status, exit-signal) go back.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for r := range nodeReqs {
			if r.Type == "exit-status" && len(r.Payload) >= 4 {
				s.exitStatus = strconv.Itoa(int(uint32(r.Payload[0])<<24 | uint32(r.Payload[1])<<16 | uint32(r.Payload[2])<<8 | uint32(r.Payload[3])))
			}
			ok, _ := ch.SendRequest(r.Type, r.WantReply, r.Payload)
			if r.WantReply {
				_ = r.Reply(ok, nil)
			}
		}
	}()
	go func() {
		_, _ = io.Copy(nodeCh, ch)
		_ = nodeCh.CloseWrite()
	}()
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(io.MultiWriter(ch, s), nodeCh)
	}()
	go func() {
		defer wg.Done()
		_, _ = io.Copy(ch.Stderr(), nodeCh.Stderr())
	}()
	wg.Wait()
	s.finish()
}

// observe notes what a client request says of the session.
func (s *relay) observe(r *ssh.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fields := map[string]string{"node": s.node.Name, "login": s.login, "sid": s.id}
	switch r.Type {
	case "pty-req":
		s.interactive = true
	case "shell":
		s.p.audit(s.user, s.from, "T2000I", "session.start", fmt.Sprintf("session %s on %s as %s", s.id, s.node.Name, s.login), fields)
	case "exec":
		var cmd struct{ Command string }
		if ssh.Unmarshal(r.Payload, &cmd) == nil {
			fields["command"] = cmd.Command
			s.p.audit(s.user, s.from, "T3000I", "exec", fmt.Sprintf("%s on %s as %s", cmd.Command, s.node.Name, s.login), fields)
		}
	}
}

// Write records the node's output of an interactive session.
func (s *relay) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.interactive {
		return len(b), nil
	}
	if s.recorded+len(b) > cluster.MaxRecording {
		s.rec.Truncated = true
		return len(b), nil
	}
	s.recorded += len(b)
	s.rec.Frames = append(s.rec.Frames, cluster.Frame{Offset: s.p.cfg.Now().Sub(s.start).Milliseconds(), Data: slices.Clone(b)})
	return len(b), nil
}

func (s *relay) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	fields := map[string]string{"node": s.node.Name, "login": s.login, "sid": s.id, "exitStatus": s.exitStatus}
	if !s.interactive {
		return
	}
	s.rec.ID, s.rec.User, s.rec.Login, s.rec.Node, s.rec.Start, s.rec.End = s.id, s.user, s.login, s.node.Name, s.start.UTC(), s.p.cfg.Now().UTC()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cluster.SaveRecording(ctx, s.p.cfg.Clients, s.rec); err != nil {
		s.p.cfg.Log.Error("session recording not saved", "sid", s.id, "error", err.Error())
		fields["recording"] = "not saved: " + err.Error()
	}
	s.p.audit(s.user, s.from, "T2004I", "session.end", fmt.Sprintf("session %s on %s ended (tsh play %s)", s.id, s.node.Name, s.id), fields)
}
