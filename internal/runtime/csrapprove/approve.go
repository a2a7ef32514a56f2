// Package csrapprove is a master's approver of kubelets' serving
// certificates, a component of the runtime (`gravity runtime
// csr-approver`). Kubelets ask for their serving certificates through
// CertificateSigningRequests to the signer kubernetes.io/kubelet-serving,
// which the controller manager signs with the cluster CA once approved;
// Kubernetes approves none of them itself. This approves a request when,
// and only when, it is a node's for itself: sent by system:node:<name> of
// system:nodes, for that name and group, for server authentication, and
// for names and addresses its Node reports as its own. Anything else is
// denied, with the reason, rather than left pending; nothing is ever
// approved wholesale.
package csrapprove

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	certv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opengravity/gravity/internal/kube"
)

const (
	nodePrefix  = "system:node:"
	nodesGroup  = "system:nodes"
	reasonOwner = "GravityNodeServingCertificate"
)

// allowedUsages are what a kubelet's serving certificate may be for.
var allowedUsages = []certv1.KeyUsage{certv1.UsageDigitalSignature, certv1.UsageKeyEncipherment, certv1.UsageServerAuth}

// Review says why csr, a kubelet-serving request, must not be approved
// for node (the Node its requester names), or nil when it may.
func Review(csr *certv1.CertificateSigningRequest, node *corev1.Node) error {
	name, ok := strings.CutPrefix(csr.Spec.Username, nodePrefix)
	if !ok || name == "" || !slices.Contains(csr.Spec.Groups, nodesGroup) {
		return fmt.Errorf("requested by %q, not by a node", csr.Spec.Username)
	}
	if node == nil || node.Name != name {
		return fmt.Errorf("node %s does not exist", name)
	}
	if !slices.Contains(csr.Spec.Usages, certv1.UsageServerAuth) {
		return errors.New("not for server authentication")
	}
	for _, u := range csr.Spec.Usages {
		if !slices.Contains(allowedUsages, u) {
			return fmt.Errorf("usage %q is not a serving certificate's", u)
		}
	}
	block, _ := pem.Decode(csr.Spec.Request)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return errors.New("no PEM certificate request")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return fmt.Errorf("parsing the request: %w", err)
	}
	if err := req.CheckSignature(); err != nil {
		return fmt.Errorf("request signature: %w", err)
	}
	if req.Subject.CommonName != csr.Spec.Username || !slices.Equal(req.Subject.Organization, []string{nodesGroup}) {
		return fmt.Errorf("subject CN=%q O=%v is not the requesting node's", req.Subject.CommonName, req.Subject.Organization)
	}
	if len(req.EmailAddresses) > 0 || len(req.URIs) > 0 {
		return errors.New("asks for e-mail or URI names")
	}
	if len(req.DNSNames)+len(req.IPAddresses) == 0 {
		return errors.New("names no address of the node")
	}
	own := map[string]bool{}
	for _, a := range node.Status.Addresses {
		own[a.Address] = true
	}
	for _, d := range req.DNSNames {
		if !own[d] {
			return fmt.Errorf("DNS name %s is not one of node %s's addresses", d, name)
		}
	}
	for _, ip := range req.IPAddresses {
		if !ownIP(own, ip) {
			return fmt.Errorf("IP address %s is not one of node %s's addresses", ip, name)
		}
	}
	return nil
}

func ownIP(own map[string]bool, ip net.IP) bool {
	for a := range own {
		if other := net.ParseIP(a); other != nil && other.Equal(ip) {
			return true
		}
	}
	return false
}

// Approver reviews pending kubelet-serving requests every Interval.
type Approver struct {
	Client   *kube.Client
	Log      *slog.Logger
	Interval time.Duration
}

// Run reviews until ctx ends. A failed round (the API away while a master
// restarts, say) is logged and tried again.
func (a Approver) Run(ctx context.Context) error {
	every := a.Interval
	if every <= 0 {
		every = 2 * time.Second
	}
	for {
		if err := a.Once(ctx); err != nil && ctx.Err() == nil {
			a.Log.Warn("reviewing certificate requests", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

// Once approves or denies every pending kubelet-serving request.
func (a Approver) Once(ctx context.Context) error {
	list, err := a.Client.CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var errs []error
	for i := range list.Items {
		csr := &list.Items[i]
		if csr.Spec.SignerName != certv1.KubeletServingSignerName || decided(csr) {
			continue
		}
		errs = append(errs, a.decide(ctx, csr))
	}
	return errors.Join(errs...)
}

func (a Approver) decide(ctx context.Context, csr *certv1.CertificateSigningRequest) error {
	var node *corev1.Node
	if name, ok := strings.CutPrefix(csr.Spec.Username, nodePrefix); ok && name != "" {
		n, err := a.Client.Nodes().Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("%s: %w", csr.Name, err)
		default:
			node = n
		}
	}
	cond := certv1.CertificateSigningRequestCondition{Type: certv1.CertificateApproved, Status: corev1.ConditionTrue,
		Reason: reasonOwner, Message: "a node's serving certificate for its own names and addresses",
		LastUpdateTime: metav1.Now()}
	if err := Review(csr, node); err != nil {
		cond.Type, cond.Message = certv1.CertificateDenied, err.Error()
		a.Log.Warn("certificate request denied", "csr", csr.Name, "requester", csr.Spec.Username, "reason", err)
	} else {
		a.Log.Info("certificate request approved", "csr", csr.Name, "requester", csr.Spec.Username)
	}
	csr.Status.Conditions = append(csr.Status.Conditions, cond)
	if _, err := a.Client.UpdateApproval(ctx, csr); err != nil {
		return fmt.Errorf("%s: %w", csr.Name, err)
	}
	return nil
}

func decided(csr *certv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certv1.CertificateApproved || c.Type == certv1.CertificateDenied {
			return true
		}
	}
	return false
}
