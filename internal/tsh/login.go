package tsh

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/opengravity/gravity/internal/clusterapi"
)

// LoginOptions are `tsh login`'s.
type LoginOptions struct {
	Proxy    string
	User     string
	Insecure bool
	// Password and OTP ask for what the user types (the one-time code only
	// when the cluster wants one).
	Password func() (string, error)
	OTP      func() (string, error)
	// TTL, when set, asks for shorter certificates.
	TTL time.Duration
	// Home is tsh's directory (Home()).
	Home string
	// Kubeconfig is the file the context goes into; empty: kubectl's
	// default ($KUBECONFIG, ~/.kube/config).
	Kubeconfig string
}

// apiClient talks to the proxy's web API.
type apiClient struct {
	addr string
	http *http.Client
}

func newAPIClient(addr string, tlsCfg *tls.Config) *apiClient {
	return &apiClient{addr: addr, http: &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: tlsCfg, Proxy: nil}}}
}

// ErrSessionExpired is an answer to a session the cluster no longer has.
var ErrSessionExpired = errors.New("your session has expired or was ended: log in again (tsh login)")

func (c *apiClient) do(ctx context.Context, method, path, bearer string, in, out any) error {
	req, err := clusterapi.NewRequest(ctx, method, "https://"+c.addr+path, in)
	if err != nil {
		return err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return explainDial(c.addr, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			return fmt.Errorf("%s is not a gravity cluster's proxy: %s %s answered %s", c.addr, method, path, resp.Status)
		}
		if resp.StatusCode == http.StatusUnauthorized && bearer != "" {
			return fmt.Errorf("%w (%s)", ErrSessionExpired, e.Error)
		}
		return errors.New(e.Error)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s is not a gravity cluster's proxy: its answer to %s is not the API's: %v", c.addr, path, err)
	}
	return nil
}

// explainDial names what is wrong with a proxy that did not answer as
// one: nothing listening, no TLS, a certificate the cluster CA does not
// verify.
func explainDial(addr string, err error) error {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var recordHeader tls.RecordHeaderError
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("the certificate of %s is not signed by a CA this machine trusts (%v): pass --insecure to accept it for the first login; tsh keeps the cluster's CA and verifies by it from then on", addr, err)
	case errors.As(err, &hostname):
		return fmt.Errorf("the certificate of %s is not for this address: %v", addr, err)
	case errors.As(err, &recordHeader):
		return fmt.Errorf("%s does not speak TLS: it is not a gravity cluster's proxy", addr)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return &unreachableError{addr: addr, err: opErr.Err}
	}
	return fmt.Errorf("proxy %s: %w", addr, err)
}

// unreachableError is a proxy that could not be reached at all: the next
// master's is tried.
type unreachableError struct {
	addr string
	err  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("proxy %s does not answer: %v", e.addr, e.err)
}
func (e *unreachableError) Unwrap() error { return e.err }

// ping asks addr what cluster it is.
func (c *apiClient) ping(ctx context.Context) (clusterapi.PingResponse, error) {
	var p clusterapi.PingResponse
	if err := c.do(ctx, http.MethodGet, clusterapi.PathPing, "", nil, &p); err != nil {
		return p, err
	}
	if p.ProxyKind != clusterapi.ProxyKind || p.Cluster == "" {
		return p, fmt.Errorf("%s is not a gravity cluster's proxy: it does not answer %s as one", c.addr, clusterapi.PathPing)
	}
	return p, nil
}

// loginTLS is the first contact's verification: --insecure accepts any
// certificate; else the CA of an earlier login, else the system's roots.
func loginTLS(home, proxy string, insecure bool) (*tls.Config, error) {
	if insecure {
		return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, nil // the user asked to skip it for this login
	}
	if p, err := Load(home, proxy); err == nil {
		if cfg, err := p.TLSConfig(); err == nil {
			return cfg, nil
		}
	}
	return &tls.Config{MinVersion: tls.VersionTLS12}, nil
}

// Login logs in and keeps the certificates and the kubeconfig context.
func Login(ctx context.Context, o LoginOptions) (*Profile, error) {
	if o.Proxy == "" || o.User == "" {
		return nil, errors.New("tsh login needs --proxy=<host:port> and --user=<name>")
	}
	if _, _, err := net.SplitHostPort(o.Proxy); err != nil {
		o.Proxy = net.JoinHostPort(o.Proxy, "3009")
	}
	tlsCfg, err := loginTLS(o.Home, o.Proxy, o.Insecure)
	if err != nil {
		return nil, err
	}
	api := newAPIClient(o.Proxy, tlsCfg)
	ping, err := api.ping(ctx)
	if err != nil {
		return nil, err
	}
	req := clusterapi.LoginRequest{User: o.User}
	if req.Password, err = o.Password(); err != nil {
		return nil, err
	}
	if ping.SecondFactor == "otp" {
		if req.OTP, err = o.OTP(); err != nil {
			return nil, err
		}
	}
	var sess clusterapi.SessionResponse
	if err := api.do(ctx, http.MethodPost, clusterapi.PathSessions, "", req, &sess); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	pub, err := ssh.NewPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	var certs clusterapi.CertsResponse
	if err := api.do(ctx, http.MethodPost, clusterapi.PathCerts, sess.Token,
		clusterapi.CertsRequest{PublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))), TTL: o.TTL}, &certs); err != nil {
		return nil, err
	}
	var who clusterapi.WhoamiResponse
	if err := api.do(ctx, http.MethodGet, clusterapi.PathWhoami, sess.Token, nil, &who); err != nil {
		return nil, err
	}
	p := &Profile{Proxy: o.Proxy, User: certs.User, Cluster: certs.Cluster, Proxies: ping.Proxies, SSHPort: ping.SSHPort,
		KubePort: ping.KubePort, WebPort: ping.WebPort, Session: sess.Token, Logins: certs.Logins, Roles: who.Roles,
		HostCA: certs.HostCA, Expires: certs.Expires, Context: ProxyHost(o.Proxy)}
	if err := save(o.Home, p, key, []byte(certs.SSHCertificate+"\n"), []byte(certs.TLSCertificate), []byte(certs.ClusterCA)); err != nil {
		return nil, err
	}
	if err := writeKubeconfig(o.Kubeconfig, p, []byte(certs.ClusterCA)); err != nil {
		return nil, fmt.Errorf("logged in, but the kubeconfig was not written: %w", err)
	}
	return p, nil
}

// api is the profile's client of the web API, trying each master.
func (p *Profile) api(ctx context.Context, method, path string, in, out any) error {
	tlsCfg, err := p.TLSConfig()
	if err != nil {
		return err
	}
	var errs []error
	for _, addr := range p.proxyAddrs(p.WebPort) {
		err := newAPIClient(addr, tlsCfg).do(ctx, method, path, p.Session, in, out)
		var down *unreachableError
		if !errors.As(err, &down) {
			return err
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Nodes lists the nodes the user may reach.
func (p *Profile) Nodes(ctx context.Context) ([]clusterapi.NodeInfo, error) {
	var nodes []clusterapi.NodeInfo
	err := p.api(ctx, http.MethodGet, clusterapi.PathNodes, nil, &nodes)
	return nodes, err
}

// Logout ends the session, removes the certificates and the kubeconfig
// context.
func Logout(ctx context.Context, home, kubeconfig string) (*Profile, error) {
	p, err := Current(home)
	if err != nil {
		return nil, err
	}
	// The session may be gone already (expired, user removed): the files
	// go anyway.
	_ = p.api(ctx, http.MethodDelete, clusterapi.PathSessions, nil, nil)
	if err := removeKubeconfig(kubeconfig, p); err != nil {
		return nil, err
	}
	return p, remove(home, p)
}

func pathOptions(kubeconfig string) *clientcmd.PathOptions {
	po := clientcmd.NewDefaultPathOptions()
	if kubeconfig != "" {
		po.LoadingRules.ExplicitPath = kubeconfig
	}
	return po
}

// writeKubeconfig adds the cluster, user and context named after the
// proxy, and makes the context current.
func writeKubeconfig(kubeconfig string, p *Profile, ca []byte) error {
	po := pathOptions(kubeconfig)
	cfg, err := po.GetStartingConfig()
	if err != nil {
		return err
	}
	name := p.Context
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: "https://" + net.JoinHostPort(ProxyHost(p.Proxy), fmt.Sprint(p.KubePort)),
		CertificateAuthorityData: ca}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificate: p.TLSCertPath(), ClientKey: p.KeyPath()}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	return clientcmd.ModifyConfig(po, *cfg, false)
}

func removeKubeconfig(kubeconfig string, p *Profile) error {
	po := pathOptions(kubeconfig)
	cfg, err := po.GetStartingConfig()
	if err != nil {
		return err
	}
	name := p.Context
	delete(cfg.Clusters, name)
	delete(cfg.AuthInfos, name)
	delete(cfg.Contexts, name)
	if cfg.CurrentContext == name {
		cfg.CurrentContext = ""
	}
	return clientcmd.ModifyConfig(po, *cfg, false)
}
