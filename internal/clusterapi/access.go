package clusterapi

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opengravity/gravity/internal/access"
	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/identity"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/version"
)

// Paths of access with short-lived certificates (`tsh`).
const (
	PathPing       = "/v1/ping"
	PathCerts      = "/v1/certs"
	PathNodes      = "/v1/nodes"
	PathHostCert   = "/v1/hosts/certificate"
	PathRecordings = "/v1/recordings"
)

// hostCertTTL: a node asks again when half of it has passed.
const hostCertTTL = 30 * 24 * time.Hour

// PingResponse tells a client what the cluster behind an address is and
// how to log in to it, before it logs in.
type PingResponse struct {
	Cluster      string `json:"cluster"`
	Version      string `json:"version"`
	SecondFactor string `json:"secondFactor"`
	// Proxies are the masters' addresses: every one runs the access
	// proxy, so a client tries the next when one is down.
	Proxies   []string `json:"proxies"`
	SSHPort   int      `json:"sshPort"`
	KubePort  int      `json:"kubePort"`
	WebPort   int      `json:"webPort"`
	ProxyKind string   `json:"proxy"`
}

// ProxyKind is what PingResponse.ProxyKind says: a client that gets
// anything else is not talking to a gravity cluster.
const ProxyKind = "gravity"

// CertsRequest asks for certificates over a key made by the client.
type CertsRequest struct {
	// PublicKey is in authorized_keys form.
	PublicKey string `json:"publicKey"`
	// TTL, when set, shortens the certificates (never lengthens them past
	// the roles' max_session_ttl).
	TTL time.Duration `json:"ttl,omitempty"`
}

// CertsResponse is a user's certificates and what verifies the cluster.
type CertsResponse struct {
	User    string `json:"user"`
	Cluster string `json:"cluster"`
	// SSHCertificate is in authorized_keys form.
	SSHCertificate string `json:"sshCertificate"`
	// TLSCertificate (PEM) is the client certificate of the Kubernetes
	// proxy.
	TLSCertificate string `json:"tlsCertificate"`
	// ClusterCA (PEM) verifies the proxies' serving certificates.
	ClusterCA string `json:"clusterCA"`
	// HostCA verifies nodes' and proxies' SSH host certificates
	// (authorized_keys form).
	HostCA  string    `json:"hostCA"`
	Logins  []string  `json:"logins"`
	Expires time.Time `json:"expires"`
}

// NodeInfo is a node as `tsh ls` lists it.
type NodeInfo struct {
	Name     string            `json:"name"`
	Hostname string            `json:"hostname"`
	Address  string            `json:"address"`
	Master   bool              `json:"master"`
	Labels   map[string]string `json:"labels"`
}

// HostCertRequest is a node's request for its SSH host certificate.
type HostCertRequest struct {
	PublicKey string `json:"publicKey"`
	Hostname  string `json:"hostname,omitempty"`
}

// HostCertResponse is the node's certificate and the CAs it checks by.
type HostCertResponse struct {
	Certificate string    `json:"certificate"`
	UserCA      string    `json:"userCA"`
	HostCA      string    `json:"hostCA"`
	Expires     time.Time `json:"expires"`
}

func (s *API) accessRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+PathPing, s.handlePing)
	mux.HandleFunc("POST "+PathCerts, s.authed("", "", s.handleCerts))
	mux.HandleFunc("GET "+PathNodes, s.authed("node", "list", s.handleNodes))
	mux.HandleFunc("POST "+PathHostCert, s.authed("", "", s.handleHostCert))
	mux.HandleFunc("GET "+PathRecordings, s.authed("session", "list", s.handleRecordings))
	mux.HandleFunc("GET "+PathRecordings+"/{id}", s.authed("session", "read", s.handleRecording))
}

func (s *API) handlePing(w http.ResponseWriter, r *http.Request) {
	ips, err := cluster.MasterIPs(r.Context(), s.cfg.Clients)
	if err != nil {
		s.fail(w, http.StatusServiceUnavailable, err)
		return
	}
	resp := PingResponse{Cluster: s.cfg.Self.ClusterName, Version: version.Version, SecondFactor: s.secondFactor(r.Context()),
		SSHPort: access.ProxySSHPort, KubePort: access.KubePort, WebPort: Port, ProxyKind: ProxyKind}
	for _, ip := range ips {
		resp.Proxies = append(resp.Proxies, ip.String())
	}
	writeJSON(w, http.StatusOK, resp)
}

// handleCerts signs a logged-in user's certificates. The caller has
// proved the password (and code) through a session, or holds an API
// token: certificates never outlive what the user's roles allow.
func (s *API) handleCerts(w http.ResponseWriter, r *http.Request, c *caller) {
	if c.Kind != callerUser {
		s.fail(w, http.StatusForbidden, errors.New("certificates are issued to users only: log in first"))
		return
	}
	var req CertsRequest
	pub, ok := s.decodeKey(w, r, &req, &req.PublicKey)
	if !ok {
		return
	}
	ctx := r.Context()
	now := s.cfg.Now()
	ttl := identity.SessionTTL(c.specs)
	if req.TTL > 0 && req.TTL < ttl {
		ttl = req.TTL
	}
	uid, err := cluster.UserUID(ctx, s.cfg.Clients, c.Name)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	users, hosts, err := s.authorities(ctx)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	logins := identity.Logins(c.specs)
	sshCert, x, err := access.SignUser(users, pub, access.User{Name: c.Name, UID: uid, Logins: logins, TTL: ttl, Now: now})
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	hostCA, err := access.AuthorizedKey(hosts)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	s.audit(r, c.Name, "T1002I", "cert.create", fmt.Sprintf("certificates issued for %s, logins %v", ttl, logins), map[string]string{"ttl": ttl.String()})
	s.answer(w, CertsResponse{User: c.Name, Cluster: s.cfg.Self.ClusterName,
		SSHCertificate: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshCert))),
		TLSCertificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: x.Raw})),
		ClusterCA:      string(s.cfg.CAs.Cluster.CertPEM()), HostCA: hostCA, Logins: logins,
		Expires: time.Unix(int64(sshCert.ValidBefore), 0).UTC()}, nil)
}

// decodeKey reads a request body into req and parses the public key it
// carries at key; a bad one is answered 400.
func (s *API) decodeKey(w http.ResponseWriter, r *http.Request, req any, key *string) (ssh.PublicKey, bool) {
	if err := decode(r, req); err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return nil, false
	}
	pub, err := access.ParseAuthorizedKey(*key)
	if err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return nil, false
	}
	return pub, true
}

// authorities are the users and hosts CAs, made on first use.
func (s *API) authorities(ctx context.Context) (users, hosts *pki.CA, err error) {
	name, now := s.cfg.Self.ClusterName, s.cfg.Now()
	if users, err = cluster.Authority(ctx, s.cfg.Clients, cluster.AuthorityUsers, name, now); err != nil {
		return nil, nil, err
	}
	if hosts, err = cluster.Authority(ctx, s.cfg.Clients, cluster.AuthorityHosts, name, now); err != nil {
		return nil, nil, err
	}
	return users, hosts, nil
}

// NodeLabels are a node's labels as `tsh ls` shows them and as `tsh ssh
// root@label=value` selects by.
func NodeLabels(n cluster.NodeStatus) map[string]string {
	l := map[string]string{"advertise-ip": n.Address, "role": n.Profile}
	if n.Hostname != "" {
		l["hostname"] = n.Hostname
	}
	if n.Master {
		l["master"] = "true"
	}
	return l
}

func (s *API) handleNodes(w http.ResponseWriter, r *http.Request, c *caller) {
	nodes, err := cluster.ListNodes(r.Context(), s.cfg.Clients)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	out := []NodeInfo{}
	for _, n := range nodes {
		labels := NodeLabels(n)
		if c.Kind == callerUser && !identity.NodeAllowed(c.specs, labels) {
			continue // a node the user may not reach is not shown
		}
		out = append(out, NodeInfo{Name: n.Name, Hostname: n.Hostname, Address: n.Address, Master: n.Master, Labels: labels})
	}
	writeJSON(w, http.StatusOK, out)
}

// handleHostCert signs a node's SSH host key. Only the node itself may
// ask, with its kubelet's client certificate (system:node:<name>), and the
// certificate names the node as the cluster knows it.
func (s *API) handleHostCert(w http.ResponseWriter, r *http.Request, c *caller) {
	name, ok := strings.CutPrefix(c.Name, "system:node:")
	if c.Kind != callerNode || !ok {
		s.fail(w, http.StatusForbidden, errors.New("host certificates are issued to nodes only, on their kubelet's certificate"))
		return
	}
	var req HostCertRequest
	pub, ok := s.decodeKey(w, r, &req, &req.PublicKey)
	if !ok {
		return
	}
	ctx := r.Context()
	nodes, err := cluster.ListNodes(ctx, s.cfg.Clients)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	var principals []string
	for _, n := range nodes {
		if n.Name == name {
			principals = uniqueNonEmpty(n.Name, n.Address, n.Hostname)
		}
	}
	if principals == nil {
		s.fail(w, http.StatusForbidden, fmt.Errorf("node %s is not in the cluster", name))
		return
	}
	users, hosts, err := s.authorities(ctx)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	cert, err := access.SignHost(hosts, pub, principals, hostCertTTL, s.cfg.Now())
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	userCA, err1 := access.AuthorizedKey(users)
	hostCA, err2 := access.AuthorizedKey(hosts)
	if err := errors.Join(err1, err2); err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	s.cfg.Log.Info("host certificate issued", "node", name, "principals", principals)
	writeJSON(w, http.StatusOK, HostCertResponse{Certificate: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(cert))),
		UserCA: userCA, HostCA: hostCA, Expires: time.Unix(int64(cert.ValidBefore), 0).UTC()})
}

func uniqueNonEmpty(in ...string) []string {
	var out []string
	for _, v := range in {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func (s *API) handleRecordings(w http.ResponseWriter, r *http.Request, _ *caller) {
	recs, err := cluster.Recordings(r.Context(), s.cfg.Clients)
	s.answer(w, recs, err)
}

func (s *API) handleRecording(w http.ResponseWriter, r *http.Request, _ *caller) {
	rec, err := cluster.GetRecording(r.Context(), s.cfg.Clients, r.PathValue("id"))
	if errors.Is(err, cluster.ErrNotFound) {
		err = notFound("no recorded session %s", r.PathValue("id"))
	}
	s.answer(w, rec, err)
}
