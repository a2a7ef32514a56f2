package clusterapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/identity"
	"github.com/opengravity/gravity/internal/install/hook"
	"github.com/opengravity/gravity/internal/manifest"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/plan"
)

// Paths of what the web control panel reads besides the identity and
// resource calls (docs/api.md).
const (
	PathLoginInfo   = "/v1/login"       // GET LoginInfo, unauthenticated
	PathCluster     = "/v1/cluster"     // GET ClusterResponse
	PathOperations  = "/v1/operations"  // GET [cluster.OperationBrief]; /{id} GET OperationResponse
	PathCertificate = "/v1/certificate" // GET CertificateResponse
)

// LoginInfo is all a login page may be told before anyone logged in.
type LoginInfo struct {
	Cluster      string `json:"cluster"`
	SecondFactor string `json:"secondFactor"`
}

// ClusterResponse is the dashboard's and the nodes page's.
type ClusterResponse struct {
	cluster.Info
	Nodes   []cluster.NodeStatus `json:"nodes"`
	Healthy bool                 `json:"healthy"`
	// Operation is the newest operation (the one that runs, when one
	// does).
	Operation *cluster.OperationBrief `json:"operation,omitempty"`
	// Profiles are the application's node profiles, each with the
	// command that joins a host with it: only for who may change the
	// cluster, since the command carries the join token.
	Profiles         []NodeProfile `json:"profiles"`
	JoinTokenExpires time.Time     `json:"joinTokenExpires,omitzero"`
}

// NodeProfile is a profile a node can join with.
type NodeProfile struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	ServiceRole string `json:"serviceRole,omitempty"`
	JoinCommand string `json:"joinCommand,omitempty"`
}

// OperationResponse is an operation with its plan and the logs of the
// application hooks it ran.
type OperationResponse struct {
	cluster.OperationBrief
	Plan     *plan.Plan `json:"plan"`
	HookLogs []HookLog  `json:"hookLogs"`
	// HookLogsError says why some hook logs are missing: the plan is
	// worth showing without them, and the panel reads this every 2 s,
	// which the service's log need not repeat.
	HookLogsError string `json:"hookLogsError,omitempty"`
}

// HookLog is the end of one hook pod's output.
type HookLog struct {
	Hook      string `json:"hook"`
	Pod       string `json:"pod"`
	Namespace string `json:"namespace"`
	Output    string `json:"output"`
}

// maxHookLog is how much of each hook pod's log an answer carries.
const maxHookLog = 32 << 10

// CertificateResponse describes the certificates the management URL
// serves: Served is the one this request was answered with.
type CertificateResponse struct {
	Served  CertificateInfo  `json:"served"`
	KeyPair *CertificateInfo `json:"tlskeypair,omitempty"`
}

// CertificateInfo is a certificate as a browser shows it.
type CertificateInfo struct {
	Source      string    `json:"source"` // "tlskeypair" or "cluster CA"
	Fingerprint string    `json:"fingerprint"`
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer"`
	DNSNames    []string  `json:"dnsNames,omitempty"`
	IPAddresses []string  `json:"ipAddresses,omitempty"`
	NotBefore   time.Time `json:"notBefore"`
	NotAfter    time.Time `json:"notAfter"`
}

// panelPermissions are the permissions the panel shows or hides its
// pages and buttons by (whoami's).
var panelPermissions = []struct{ resource, verb string }{
	{"cluster", "read"}, {"cluster", "update"}, {"operation", "list"}, {"operation", "read"},
	{"user", "list"}, {"user", "create"}, {"user", "update"}, {"user", "delete"}, {"role", "list"},
	{"event", "list"}, {"tlskeypair", "read"}, {"tlskeypair", "create"}, {"tlskeypair", "update"}, {"tlskeypair", "delete"},
}

// permissions are c's panel permissions, keyed "verb resource".
func permissions(c *caller) map[string]bool {
	out := make(map[string]bool, len(panelPermissions))
	for _, p := range panelPermissions {
		out[p.verb+" "+p.resource] = identity.Allowed(c.specs, p.resource, p.verb)
	}
	return out
}

func (s *API) panelRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+PathLoginInfo, s.handleLoginInfo)
	mux.HandleFunc("GET "+PathCluster, s.authed("cluster", "read", s.handleCluster))
	mux.HandleFunc("GET "+PathOperations, s.authed("operation", "list", s.handleOperations))
	mux.HandleFunc("GET "+PathOperations+"/{id}", s.authed("operation", "read", s.handleOperation))
	mux.HandleFunc("GET "+PathCertificate, s.authed("tlskeypair", "read", s.handleCertificate))
}

func (s *API) handleLoginInfo(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, LoginInfo{Cluster: s.cfg.Self.ClusterName, SecondFactor: s.secondFactor(r.Context())})
}

func (s *API) handleCluster(w http.ResponseWriter, r *http.Request, c *caller) {
	ctx := r.Context()
	st, err := cluster.ReadStatus(ctx, s.cfg.Clients, cluster.Probes{Node: s.cfg.NodeProbe})
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	resp := ClusterResponse{Info: st.Info, Nodes: st.Nodes, Healthy: len(st.Nodes) > 0}
	if resp.Nodes == nil {
		resp.Nodes = []cluster.NodeStatus{}
	}
	for _, n := range st.Nodes {
		resp.Healthy = resp.Healthy && n.Status == "healthy"
	}
	if len(st.Operations) > 0 {
		resp.Operation = &st.Operations[0]
	}
	resp.Profiles, err = s.profiles(ctx)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	if identity.Allowed(c.specs, "cluster", "update") {
		var masters []string
		for _, n := range st.Nodes {
			if n.Master && n.Address != "" {
				masters = append(masters, n.Address)
			}
		}
		if len(masters) == 0 {
			masters = []string{s.cfg.Self.IP.String()}
		}
		for i := range resp.Profiles {
			resp.Profiles[i].JoinCommand = fmt.Sprintf("sudo ./gravity join %s --token=%s --role=%s",
				strings.Join(masters, ","), st.Token, resp.Profiles[i].Name)
		}
		resp.JoinTokenExpires = st.TokenExpires
	}
	writeJSON(w, http.StatusOK, resp)
}

// profiles are the application's node profiles; "node" when its
// manifest has none, as `gravity join` then takes.
func (s *API) profiles(ctx context.Context) ([]NodeProfile, error) {
	raw, err := cluster.Profiles(ctx, s.cfg.Clients)
	if err != nil {
		return nil, err
	}
	var ps []manifest.NodeProfile
	if err := yaml.Unmarshal(raw, &ps); err != nil {
		return nil, fmt.Errorf("the cluster's node profiles: %w", err)
	}
	out := []NodeProfile{}
	for _, p := range ps {
		out = append(out, NodeProfile{Name: p.Name, Description: p.Description, ServiceRole: p.ServiceRole})
	}
	if len(out) == 0 {
		out = append(out, NodeProfile{Name: "node"})
	}
	return out, nil
}

func (s *API) handleOperations(w http.ResponseWriter, r *http.Request, _ *caller) {
	ops, err := cluster.Operations(r.Context(), s.cfg.Clients)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	out := make([]cluster.OperationBrief, 0, len(ops))
	for _, p := range ops {
		out = append(out, cluster.Brief(p))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *API) handleOperation(w http.ResponseWriter, r *http.Request, _ *caller) {
	id := r.PathValue("id")
	p, err := cluster.Operation(r.Context(), s.cfg.Clients, id)
	if errors.Is(err, plan.ErrNoPlan) {
		err = notFound("operation %q does not exist", id)
	}
	if err != nil {
		s.answer(w, nil, err)
		return
	}
	resp := OperationResponse{OperationBrief: cluster.Brief(p), Plan: p}
	resp.HookLogs, err = s.hookLogs(r.Context(), id)
	if err != nil {
		resp.HookLogsError = err.Error()
	}
	writeJSON(w, http.StatusOK, resp)
}

// hookLogs reads the logs of the operation's hook pods, which the
// cluster keeps with their Jobs.
func (s *API) hookLogs(ctx context.Context, op string) ([]HookLog, error) {
	sel := metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: map[string]string{hook.LabelOperation: op}})
	pods, err := s.cfg.Clients.Kube.Pods("").List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return []HookLog{}, fmt.Errorf("listing hook pods: %w", err)
	}
	out := []HookLog{}
	var errs []error
	for _, p := range pods.Items {
		if len(p.Spec.Containers) == 0 {
			continue
		}
		l := HookLog{Hook: p.Labels[hook.LabelHook], Pod: p.Name, Namespace: p.Namespace}
		rc, err := s.cfg.Clients.Kube.PodLogs(ctx, p.Namespace, p.Name, p.Spec.Containers[0].Name, false)
		if err != nil {
			errs = append(errs, fmt.Errorf("logs of %s/%s: %w", p.Namespace, p.Name, err))
			continue
		}
		tail := hook.NewTail(maxHookLog)
		_, err = io.Copy(tail, rc)
		rc.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("logs of %s/%s: %w", p.Namespace, p.Name, err))
		}
		l.Output = tail.String()
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b HookLog) int { return strings.Compare(a.Pod, b.Pod) })
	return out, errors.Join(errs...)
}

func (s *API) handleCertificate(w http.ResponseWriter, r *http.Request, _ *caller) {
	var resp CertificateResponse
	if pair := s.web.pair.Load(); pair != nil {
		info := certInfo(pair.Leaf, "tlskeypair")
		resp.KeyPair = &info
	}
	serverName := ""
	if r.TLS != nil {
		serverName = r.TLS.ServerName
	}
	served, err := s.web.get(&tls.ClientHelloInfo{ServerName: serverName})
	source := "cluster CA"
	switch {
	case err != nil:
	case served == nil:
		served = s.cfg.Certificate
	case resp.KeyPair != nil && served == s.web.pair.Load():
		source = "tlskeypair"
	}
	var leaf *x509.Certificate
	if err == nil && served != nil && len(served.Certificate) > 0 {
		leaf, err = x509.ParseCertificate(served.Certificate[0])
	}
	if err == nil && leaf == nil {
		err = errors.New("this service was given no certificate to describe")
	}
	if err != nil {
		s.fail(w, http.StatusInternalServerError, fmt.Errorf("the served certificate: %w", err))
		return
	}
	resp.Served = certInfo(leaf, source)
	writeJSON(w, http.StatusOK, resp)
}

func certInfo(c *x509.Certificate, source string) CertificateInfo {
	info := CertificateInfo{Source: source, Fingerprint: pki.Fingerprint(c), Subject: c.Subject.String(), Issuer: c.Issuer.String(),
		DNSNames: c.DNSNames, NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC()}
	for _, ip := range c.IPAddresses {
		info.IPAddresses = append(info.IPAddresses, ip.String())
	}
	return info
}
