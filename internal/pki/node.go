package pki

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Defaults for certificates and CAs, as kubeadm chooses them.
const (
	DefaultCAValidity    = 10 * 365 * 24 * time.Hour
	DefaultCertValidity  = 365 * 24 * time.Hour
	DefaultClusterDomain = "cluster.local"
	// RegistryHost is the name the cluster registry is reached by, on nodes
	// (containerd hosts.toml) and in pods (CoreDNS hosts).
	RegistryHost = "registry.local"
)

// Names of the key pairs NodeCerts returns: the map keys, and the file
// names under the PKI directory (WriteDir appends .crt and .key).
const (
	// Masters only.
	EtcdServer             = "etcd/server"
	EtcdPeer               = "etcd/peer"
	APIServerEtcdClient    = "apiserver-etcd-client"
	APIServer              = "apiserver"
	APIServerKubeletClient = "apiserver-kubelet-client"
	FrontProxyClient       = "front-proxy-client"
	ControllerManager      = "controller-manager"
	Scheduler              = "scheduler"
	Admin                  = "admin"
	RegistryServer         = "registry"
	// RegistryPusher is the cluster's own push path to its registry
	// (export, upload, sync): the one identity the registry lets push.
	RegistryPusher = "registry-pusher"
	// CSRApprover approves kubelets' serving certificate requests.
	CSRApprover = "csr-approver"
	// ClusterService is the cluster service's serving certificate (:3009);
	// ClusterServiceClient its identity towards the API server.
	ClusterService       = "cluster-service"
	ClusterServiceClient = "cluster-service-client"
	// AgentClient is a master's identity towards nodes' agents: the one
	// that may have them run an operation's phases.
	AgentClient = "agent-client"
	// Every node.
	KubeletClient  = "kubelet-client"
	KubeletServer  = "kubelet"
	KubeProxy      = "kube-proxy"
	RegistryClient = "registry-client"
	// Agent is the node agent's serving certificate (:3012).
	Agent = "agent"
)

// Organizations with meaning to Kubernetes RBAC.
const (
	// SystemMasters is bound to cluster-admin and bypasses authorization.
	// kubeadm moved admin.conf to kubeadm:cluster-admins so that the binding
	// can be revoked; we keep system:masters for the admin and the
	// apiserver's kubelet client, as Gravity did, which is simpler to
	// bootstrap (no binding must exist before the first request).
	SystemMasters = "system:masters"
	SystemNodes   = "system:nodes"
	// RegistryClients is the organization of registry client certificates,
	// which may pull; RegistryPushers of those that may also push. The
	// registry's gate checks the CA and these, not the common name.
	RegistryClients = "gravity:registry-clients"
	// CSRApproverUser is the approver's user name, which RBAC binds.
	CSRApproverUser = "gravity:csr-approver"
	// ClusterServiceUser is the cluster service's user name, which RBAC
	// binds.
	ClusterServiceUser = "gravity:cluster-service"
	RegistryPushers    = "gravity:registry-pushers"
	// AgentClients is the organization of the agent-client certificates
	// masters hold, which nodes' agents check.
	AgentClients = "gravity:agent-clients"
)

// Node is what a node's certificates are derived from.
type Node struct {
	// Name is the Kubernetes node name: Gravity names nodes by their
	// advertise IP.
	Name string
	// IP is the advertise address.
	IP net.IP
	// Hostname, when set, is added to the kubelet serving certificate.
	Hostname string
	Master   bool
	// ServiceIP is the first address of the service CIDR, the `kubernetes`
	// service's cluster IP. Masters only.
	ServiceIP net.IP
	// ClusterDomain defaults to DefaultClusterDomain.
	ClusterDomain string
	// Validity defaults to DefaultCertValidity; Now to time.Now().
	Validity time.Duration
	Now      time.Time
}

// profile is one certificate a node needs and which CA issues it.
type profile struct {
	name string
	ca   func(*CASet) *CA
	req  Request
}

func clusterCA(cs *CASet) *CA    { return cs.Cluster }
func etcdCA(cs *CASet) *CA       { return cs.Etcd }
func frontProxyCA(cs *CASet) *CA { return cs.FrontProxy }

// NodeCerts issues every certificate node n needs, keyed by the names above.
func NodeCerts(cs *CASet, n Node) (map[string]*KeyPair, error) {
	if cs == nil || cs.Cluster == nil || cs.Etcd == nil || cs.FrontProxy == nil {
		return nil, errors.New("node certificates: incomplete CA set")
	}
	n, err := n.withDefaults()
	if err != nil {
		return nil, err
	}
	out := map[string]*KeyPair{}
	for _, p := range nodeProfiles(n) {
		p.req.Validity, p.req.Now = n.Validity, n.Now
		kp, err := p.ca(cs).Issue(p.req)
		if err != nil {
			return nil, fmt.Errorf("node %s: %s: %w", n.Name, p.name, err)
		}
		out[p.name] = kp
	}
	return out, nil
}

func (n Node) withDefaults() (Node, error) {
	if n.Name == "" {
		return n, errors.New("node certificates: empty node name")
	}
	if n.IP == nil || (n.IP.To4() == nil && len(n.IP) != net.IPv6len) {
		return n, fmt.Errorf("node %s: invalid advertise IP %v", n.Name, n.IP)
	}
	if n.Master && n.ServiceIP == nil {
		return n, fmt.Errorf("node %s: a master needs the service IP of the kubernetes service", n.Name)
	}
	if n.ClusterDomain == "" {
		n.ClusterDomain = DefaultClusterDomain
	}
	if strings.HasPrefix(n.ClusterDomain, ".") || strings.HasSuffix(n.ClusterDomain, ".") {
		return n, fmt.Errorf("node %s: invalid cluster domain %q", n.Name, n.ClusterDomain)
	}
	if n.Validity == 0 {
		n.Validity = DefaultCertValidity
	}
	if n.Now.IsZero() {
		n.Now = time.Now()
	}
	return n, nil
}

func nodeProfiles(n Node) []profile {
	loopback := net.IPv4(127, 0, 0, 1)
	nodeName := "system:node:" + n.Name
	ps := []profile{
		{KubeletClient, clusterCA, Request{CommonName: nodeName, Organization: []string{SystemNodes}, Usages: UsageClient}},
		{KubeletServer, clusterCA, Request{CommonName: nodeName, Organization: []string{SystemNodes},
			DNSNames: nonEmpty(n.Hostname), IPs: []net.IP{n.IP}, Usages: UsageServer}},
		{KubeProxy, clusterCA, Request{CommonName: "system:kube-proxy", Usages: UsageClient}},
		{RegistryClient, clusterCA, Request{CommonName: "registry-client:" + n.Name,
			Organization: []string{RegistryClients}, Usages: UsageClient}},
		{Agent, clusterCA, Request{CommonName: "gravity-agent:" + n.Name, IPs: []net.IP{n.IP, loopback}, Usages: UsageServer}},
	}
	if !n.Master {
		return ps
	}
	local := []string{"localhost"}
	return append(ps,
		// etcd dials itself (grpc-gateway) with its serving certificate, so
		// it must be a client certificate too, as kubeadm issues it.
		profile{EtcdServer, etcdCA, Request{CommonName: n.Name, DNSNames: local,
			IPs: []net.IP{n.IP, loopback}, Usages: UsageBoth}},
		profile{EtcdPeer, etcdCA, Request{CommonName: n.Name, DNSNames: local,
			IPs: []net.IP{n.IP, loopback}, Usages: UsageBoth}},
		profile{APIServerEtcdClient, etcdCA, Request{CommonName: "kube-apiserver-etcd-client", Usages: UsageClient}},
		profile{APIServer, clusterCA, Request{CommonName: "kube-apiserver", DNSNames: apiServerNames(n.ClusterDomain),
			IPs: []net.IP{n.IP, n.ServiceIP, loopback}, Usages: UsageServer}},
		profile{APIServerKubeletClient, clusterCA, Request{CommonName: "kube-apiserver-kubelet-client",
			Organization: []string{SystemMasters}, Usages: UsageClient}},
		profile{FrontProxyClient, frontProxyCA, Request{CommonName: "front-proxy-client", Usages: UsageClient}},
		profile{ControllerManager, clusterCA, Request{CommonName: "system:kube-controller-manager", Usages: UsageClient}},
		profile{Scheduler, clusterCA, Request{CommonName: "system:kube-scheduler", Usages: UsageClient}},
		profile{Admin, clusterCA, Request{CommonName: "admin", Organization: []string{SystemMasters}, Usages: UsageClient}},
		profile{RegistryServer, clusterCA, Request{CommonName: RegistryHost, DNSNames: []string{RegistryHost, "localhost"},
			IPs: []net.IP{n.IP, loopback}, Usages: UsageServer}},
		profile{RegistryPusher, clusterCA, Request{CommonName: "registry-pusher:" + n.Name,
			Organization: []string{RegistryPushers}, Usages: UsageClient}},
		profile{CSRApprover, clusterCA, Request{CommonName: CSRApproverUser, Usages: UsageClient}},
		profile{ClusterService, clusterCA, Request{CommonName: "gravity-site", DNSNames: []string{"localhost"},
			IPs: []net.IP{n.IP, loopback}, Usages: UsageServer}},
		profile{ClusterServiceClient, clusterCA, Request{CommonName: ClusterServiceUser, Usages: UsageClient}},
		profile{AgentClient, clusterCA, Request{CommonName: "agent-client:" + n.Name,
			Organization: []string{AgentClients}, Usages: UsageClient}},
	)
}

func apiServerNames(domain string) []string {
	return []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc." + domain, "localhost"}
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}
