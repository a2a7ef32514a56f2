package clusterservice

import (
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/opengravity/gravity/internal/plan"
	"github.com/opengravity/gravity/internal/store"
)

// Paths of the API. Discovery is the only one answered without the token.
const (
	PathDiscovery = "/v1/join/discovery"
	PathJoin      = "/v1/join"             // POST JoinRequest → JoinResponse
	PathProfile   = "/v1/join/profile"     // POST JoinRequest → ProfileResponse (nothing recorded)
	PathOperation = "/v1/join/operations/" // + id: PUT plan; + id/certs: POST; + id/complete, id/rollback: POST
	PathPackage   = "/v1/packages/"        // + ref: GET PackageInfo
	PathBlob      = "/v1/blobs/"           // + digest: GET (Range works)
	PathNodes     = "/v1/nodes/"           // + name/remove: POST (an admin's or the node's own certificate)
)

// JoinRequest asks to add the calling host to the cluster.
type JoinRequest struct {
	Hostname string `json:"hostname"`
	IP       string `json:"ip"`
	// Role is the node profile; empty: the first master's.
	Role string `json:"role,omitempty"`
	// Master asks for a master or a worker; nil: a master while the
	// cluster has fewer than MaxMasters, else a worker.
	Master *bool `json:"master,omitempty"`
	// Version is the joining gravity's: it must be the cluster's.
	Version string `json:"version"`
	// OperationID resumes an expand the host started before.
	OperationID string `json:"operationID,omitempty"`
}

// JoinResponse is what a joining node needs to configure itself.
type JoinResponse struct {
	OperationID string `json:"operationID"`
	// Plan is the operation as the cluster recorded it: the node appends
	// its phases and drives them.
	Plan *plan.Plan `json:"plan"`
	Node NodeConfig `json:"node"`
}

// NodeConfig is the cluster-wide settings and the joining node's share.
type NodeConfig struct {
	ClusterName   string    `json:"clusterName"`
	App           string    `json:"app"`
	AppVersion    string    `json:"appVersion"`
	AppPackage    string    `json:"appPackage"`
	CloudProvider string    `json:"cloudProvider,omitempty"`
	BaseVersion   string    `json:"baseVersion"`
	PodCIDR       string    `json:"podCIDR"`
	ServiceCIDR   string    `json:"serviceCIDR"`
	DNSUpstreams  []string  `json:"dnsUpstreams,omitempty"`
	PauseImage    string    `json:"pauseImage"`
	Masters       []Member  `json:"masters"`
	Self          Member    `json:"self"`
	Created       time.Time `json:"created"`
}

// Member is one node as the join sees it.
type Member struct {
	IP        string `json:"ip"`
	Hostname  string `json:"hostname"`
	Role      string `json:"role"`
	Master    bool   `json:"master"`
	PodSubnet string `json:"podSubnet,omitempty"`
}

// CertRequest carries the joining node's certificate requests (PEM, by
// key pair name); CertResponse the certificates and the cluster CA.
type CertRequest struct {
	CSRs map[string][]byte `json:"csrs"`
}

type CertResponse struct {
	Certs map[string][]byte `json:"certs"`
	CA    []byte            `json:"ca"`
	// CAFiles is the CA set (pki.ReadFiles), for a master only.
	CAFiles map[string][]byte `json:"caFiles,omitempty"`
}

// PackageInfo is a package's metadata and its layers, each fetched from
// PathBlob and checked against its digest.
type PackageInfo struct {
	Ref    string            `json:"ref"`
	Meta   store.PackageMeta `json:"meta"`
	Layers []v1.Descriptor   `json:"layers"`
}

// PlanUpdate is the joining node's plan, saved as the operation's.
type PlanUpdate struct {
	Plan *plan.Plan `json:"plan"`
}

// apiError is every error's body.
type apiError struct {
	Error string `json:"error"`
	// Busy: another operation holds the cluster; try again later.
	Busy bool `json:"busy,omitempty"`
}
