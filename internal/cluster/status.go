package cluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/resources"
)

// Node labels install sets: the node's profile (Gravity's role) and the
// host's name (nodes are named by their address).
const (
	LabelRole     = "gravitational.io/role"
	LabelHostname = "gravitational.io/hostname"
)

// Status is what `gravity status` shows.
type Status struct {
	Info  Info   `json:"cluster"`
	Token string `json:"joinToken,omitempty"`
	// TokenExpires is when the join token stops admitting nodes; zero
	// when it never does.
	TokenExpires time.Time        `json:"joinTokenExpires,omitzero"`
	Endpoints    []Endpoint       `json:"endpoints"`
	Nodes        []NodeStatus     `json:"nodes"`
	Operations   []OperationBrief `json:"operations"`
	// ExpiringCertificates are this node's certificates that expire
	// within pki.RenewWithin, soonest first.
	ExpiringCertificates []pki.Expiry `json:"expiringCertificates,omitempty"`
	// WebCertificate is the SHA-256 fingerprint of the certificate the
	// cluster management URL serves, as a browser is shown it.
	WebCertificate string `json:"webCertificateFingerprint,omitempty"`
}

// Endpoint is a cluster service that answered when asked.
type Endpoint struct {
	Name string   `json:"name"`
	URLs []string `json:"urls"`
}

// NodeStatus is one node's health as the cluster sees it.
type NodeStatus struct {
	Name     string   `json:"name"`
	Hostname string   `json:"hostname"`
	Address  string   `json:"address"`
	Profile  string   `json:"profile"` // the manifest's node profile (Gravity's role)
	Master   bool     `json:"master"`
	Roles    []string `json:"roles"`
	Status   string   `json:"status"` // "healthy" or "degraded"
	Problems []string `json:"problems,omitempty"`
}

// OperationBrief is one operation in the status.
type OperationBrief struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	// Description says what it does ("Join node node-2 (10.0.0.2) as
	// node"); Done and Phases are its progress in leaf phases.
	Description string    `json:"description,omitempty"`
	Done        int       `json:"phasesDone"`
	Phases      int       `json:"phases"`
	State       string    `json:"state"`
	Created     time.Time `json:"created"`
	Finished    time.Time `json:"finished,omitzero"`
}

// Probes say whether an endpoint answers; the caller supplies them with the
// credentials each needs.
type Probes struct {
	API      func(ctx context.Context, url string) error
	Registry func(ctx context.Context, url string) error
	// Web checks a master's cluster management URL.
	Web func(ctx context.Context, url string) error
	// Node checks a node from here, by its address: a node whose
	// processes died is degraded at once, where Kubernetes marks it
	// NotReady only after its grace period.
	Node func(ctx context.Context, address string) error
}

// KubeletProbe is a Node probe: the node's kubelet accepts connections.
func KubeletProbe(ctx context.Context, address string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(address, "10250"))
	if err != nil {
		return fmt.Errorf("kubelet at %s:10250 does not answer: %w", address, err)
	}
	return c.Close()
}

// ReadStatus gathers the cluster's status from its API.
func ReadStatus(ctx context.Context, c Clients, probes Probes) (Status, error) {
	var st Status
	info, err := LoadInfo(ctx, c)
	if err != nil {
		return st, err
	}
	st.Info = info
	t, err := Token(ctx, c)
	if err != nil {
		return st, fmt.Errorf("reading the join token: %w", err)
	}
	st.Token, st.TokenExpires = t.Token, t.Expires
	nodes, err := c.Kube.Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return st, fmt.Errorf("listing nodes: %w", err)
	}
	for _, n := range nodes.Items {
		st.Nodes = append(st.Nodes, nodeStatus(n))
	}
	if probes.Node != nil {
		probeNodes(ctx, st.Nodes, probes.Node)
	}
	ops, err := Operations(ctx, c)
	if err != nil {
		return st, err
	}
	for _, p := range ops {
		st.Operations = append(st.Operations, Brief(p))
	}
	st.Endpoints = endpoints(ctx, st.Nodes, probes)
	gw, err := GetResource(ctx, c, resources.KindAuthGateway, resources.KindAuthGateway)
	if err == nil {
		st.Endpoints = publicEndpoints(st.Endpoints, gw.Spec.(*resources.AuthGatewaySpec))
	}
	return st, nil
}

// probeNodes checks every node at once and marks those that fail.
func probeNodes(ctx context.Context, nodes []NodeStatus, probe func(context.Context, string) error) {
	var wg sync.WaitGroup
	for i := range nodes {
		if nodes[i].Address == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := probe(ctx, nodes[i].Address); err != nil {
				nodes[i].Status = "degraded"
				nodes[i].Problems = append(nodes[i].Problems, err.Error())
			}
		}()
	}
	wg.Wait()
}

func nodeStatus(n corev1.Node) NodeStatus {
	ns := NodeStatus{Name: n.Name, Hostname: n.Labels[LabelHostname], Profile: n.Labels[LabelRole], Status: "healthy"}
	if role := n.Labels[LabelRole]; role != "" {
		ns.Roles = append(ns.Roles, role)
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			ns.Address = a.Address
		}
	}
	for k := range n.Labels {
		if role, ok := cutPrefix(k, "node-role.kubernetes.io/"); ok {
			ns.Roles = append(ns.Roles, role)
			ns.Master = ns.Master || role == "control-plane"
		}
	}
	sort.Strings(ns.Roles)
	for _, c := range n.Status.Conditions {
		// Ready must be True; every other condition (pressure, network
		// unavailable) False.
		healthy := c.Status == corev1.ConditionFalse
		if c.Type == corev1.NodeReady {
			healthy = c.Status == corev1.ConditionTrue
		}
		if !healthy {
			ns.Problems = append(ns.Problems, fmt.Sprintf("%s=%s: %s", c.Type, c.Status, c.Message))
		}
	}
	if n.Spec.Unschedulable {
		ns.Problems = append(ns.Problems, "unschedulable (cordoned)")
	}
	if len(ns.Problems) > 0 {
		ns.Status = "degraded"
	}
	return ns
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) > len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return "", false
}

// Brief is an operation as status lists it.
func Brief(p *plan.Plan) OperationBrief {
	b := OperationBrief{ID: p.OperationID, Type: p.OperationType, Description: p.Description, State: string(p.State()), Created: p.Created}
	for _, ph := range p.Leaves() {
		b.Phases++
		if ph.State == plan.Completed {
			b.Done++
		}
		if ph.Finished.After(b.Finished) {
			b.Finished = ph.Finished
		}
	}
	if p.State() != plan.Completed {
		b.Finished = time.Time{}
	}
	return b
}

// endpoints lists the services that answer now: an endpoint is shown only
// once something serves it.
func endpoints(ctx context.Context, nodes []NodeStatus, probes Probes) []Endpoint {
	var api, reg, gateway, web []string
	for _, n := range nodes {
		if n.Address == "" {
			continue
		}
		if w := "https://" + net.JoinHostPort(n.Address, WebPort); n.Master && probes.Web != nil && probes.Web(ctx, w) == nil {
			gateway = append(gateway, net.JoinHostPort(n.Address, WebPort))
			web = append(web, w)
		}
		u := "https://" + net.JoinHostPort(n.Address, "6443")
		if probes.API != nil && probes.API(ctx, u) == nil {
			api = append(api, u)
		}
		r := "https://" + net.JoinHostPort(n.Address, "5000")
		if probes.Registry != nil && probes.Registry(ctx, r) == nil {
			reg = append(reg, r)
		}
	}
	var out []Endpoint
	if len(web) > 0 {
		out = append(out, Endpoint{Name: EndpointGateway, URLs: gateway}, Endpoint{Name: EndpointManagement, URLs: web})
	}
	if len(api) > 0 {
		out = append(out, Endpoint{Name: "Kubernetes API", URLs: api})
	}
	if len(reg) > 0 {
		out = append(out, Endpoint{Name: "Cluster registry (registry.local:5000)", URLs: reg})
	}
	return out
}

// WebPort is every master's cluster management URL's.
const WebPort = "32009"

// The endpoints of the cluster API, as Gravity named them.
const (
	EndpointGateway    = "Authentication gateway"
	EndpointManagement = "Cluster management URL"
)

// publicEndpoints puts the auth gateway's public addresses in place of
// the masters' own, when it has any.
func publicEndpoints(eps []Endpoint, gw *resources.AuthGatewaySpec) []Endpoint {
	withPort := func(a string) string {
		if _, _, err := net.SplitHostPort(a); err == nil {
			return a
		}
		return net.JoinHostPort(a, WebPort)
	}
	web := gw.WebPublicAddr
	if len(web) == 0 {
		web = gw.PublicAddr
	}
	for i := range eps {
		switch {
		case eps[i].Name == EndpointGateway && len(gw.PublicAddr) > 0:
			eps[i].URLs = nil
			for _, a := range gw.PublicAddr {
				eps[i].URLs = append(eps[i].URLs, withPort(a))
			}
		case eps[i].Name == EndpointManagement && len(web) > 0:
			eps[i].URLs = nil
			for _, a := range web {
				eps[i].URLs = append(eps[i].URLs, "https://"+withPort(a))
			}
		}
	}
	return eps
}

// HTTPProbe is a probe that GETs path with client and wants a 200.
func HTTPProbe(client *http.Client, path string) func(ctx context.Context, url string) error {
	return HTTPProbeSeeing(client, path, nil)
}

// HTTPProbeSeeing is HTTPProbe that shows each 200 answer to seen (its
// TLS state, for one).
func HTTPProbeSeeing(client *http.Client, path string, seen func(*http.Response)) func(ctx context.Context, url string) error {
	return func(ctx context.Context, url string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+path, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		if seen != nil {
			seen(resp)
		}
		return nil
	}
}

// MasterIPs are the cluster's masters now: the addresses of the nodes with
// the control-plane role (nodes are named by their address), sorted. A
// node's config lists the masters it was installed or joined with, which
// joins and removals since may have changed.
func MasterIPs(ctx context.Context, c Clients) ([]net.IP, error) {
	nodes, err := c.Kube.Nodes().List(ctx, metav1.ListOptions{LabelSelector: "node-role.kubernetes.io/control-plane"})
	if err != nil {
		return nil, fmt.Errorf("listing masters: %w", err)
	}
	var out []net.IP
	for _, n := range nodes.Items {
		if ip := net.ParseIP(n.Name); ip != nil {
			out = append(out, ip)
		}
	}
	slices.SortFunc(out, func(a, b net.IP) int { return strings.Compare(a.String(), b.String()) })
	return out, nil
}
