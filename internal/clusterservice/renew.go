package clusterservice

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/pki"
)

// handleNodeCerts renews a worker's certificates from its requests,
// asked with its current kubelet client certificate: a node renews its
// own only, with the names and addresses the cluster knows it by.
func (s *Service) handleNodeCerts(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		s.fail(w, http.StatusUnauthorized, errors.New("a node renews its certificates with its current client certificate"))
		return
	}
	cert := r.TLS.VerifiedChains[0][0]
	if cert.Subject.CommonName != "system:node:"+name || !slices.Contains(cert.Subject.Organization, pki.SystemNodes) {
		s.fail(w, http.StatusForbidden, fmt.Errorf("%s may not renew the certificates of node %s", cert.Subject.CommonName, name))
		return
	}
	var req CertRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	n, err := s.cfg.Clients.Kube.Nodes().Get(r.Context(), name, metav1.GetOptions{})
	if err != nil {
		s.fail(w, http.StatusBadRequest, fmt.Errorf("node %s: %w", name, err))
		return
	}
	if _, master := n.Labels[labelControlPlane]; master {
		s.fail(w, http.StatusBadRequest, errors.New("a master renews its certificates from its own CA set (`gravity certs renew` there)"))
		return
	}
	ip := net.ParseIP(name)
	if ip == nil {
		ip = net.ParseIP(nodeIP(*n))
	}
	pn := pki.Node{Name: name, IP: ip, Hostname: n.Labels[cluster.LabelHostname]}
	certs, err := pki.SignNodeRequests(s.cfg.CAs, pn, req.CSRs)
	if err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	s.cfg.Log.Info("certificates renewed", "node", name, "count", len(certs))
	writeJSON(w, http.StatusOK, CertResponse{Certs: certs, CA: s.cfg.CAs.Cluster.CertPEM()})
}

// RenewNode has the service at addr sign a worker's new certificate
// requests, authenticated by its current client certificate (tlsCfg).
func RenewNode(ctx context.Context, addr string, tlsCfg *tls.Config, name string, csrs map[string][]byte) (*CertResponse, error) {
	var out CertResponse
	if err := postWithCert(ctx, addr, tlsCfg, PathNodes+name+"/certs", time.Minute, CertRequest{CSRs: csrs}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
