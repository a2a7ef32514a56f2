package clusterapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/resources"
)

// webCert is the certificate of the tlskeypair resource, when there is
// one, as every master's service reloads it: a replaced certificate is
// served within webCertRefresh, without a restart.
type webCert struct {
	pair atomic.Pointer[tls.Certificate]
	// own is this master's certificate of the cluster CA with the auth
	// gateway's public addresses added, issued here when they change
	// (ownFor); nil while the gateway has none.
	own    atomic.Pointer[tls.Certificate]
	ownFor string
}

const webCertRefresh = 10 * time.Second

// get serves the tlskeypair's certificate to clients that name a host it
// covers (a browser at the cluster's DNS name). Everything else (nodes
// joining, `gravity` on a master, browsers at an address) gets the
// master's own certificate of the cluster CA, which nodes pin.
func (c *webCert) get(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	pair := c.pair.Load()
	if pair == nil || hello.ServerName == "" || pair.Leaf.VerifyHostname(hello.ServerName) != nil {
		return c.own.Load(), nil // nil: the configuration's own certificate
	}
	return pair, nil
}

// refreshWebCert keeps the certificate in step with the cluster's tlskeypair until ctx
// ends.
func (s *API) refreshWebCert(ctx context.Context) {
	for {
		s.loadWebCert(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(webCertRefresh):
		}
	}
}

// loadWebCert reads the tlskeypair and authgateway resources once.
func (s *API) loadWebCert(ctx context.Context) {
	s.loadGatewayCert(ctx)
	r, err := cluster.GetResource(ctx, s.cfg.Clients, resources.KindTLSKeyPair, singletons[resources.KindTLSKeyPair])
	switch {
	case errors.Is(err, cluster.ErrNotFound):
		s.web.pair.Store(nil)
	case err != nil:
		s.cfg.Log.Debug("reading the web certificate", "error", err.Error())
	default:
		spec := r.Spec.(*resources.TLSKeyPairSpec)
		pair, err := tls.X509KeyPair([]byte(spec.Cert), []byte(spec.PrivateKey))
		if err == nil {
			pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0])
		}
		if err != nil {
			s.cfg.Log.Warn("the tlskeypair resource is not a usable key pair", "error", err.Error())
		} else if old := s.web.pair.Load(); old == nil || !old.Leaf.Equal(pair.Leaf) {
			s.web.pair.Store(&pair)
			s.cfg.Log.Info("serving the tlskeypair certificate", "subject", pair.Leaf.Subject.String(), "dns", pair.Leaf.DNSNames)
		}
	}
}

// loadGatewayCert issues this master a certificate that also covers the
// auth gateway's public addresses, when they changed.
func (s *API) loadGatewayCert(ctx context.Context) {
	var dns []string
	var ips []net.IP
	for _, a := range s.gatewayAddrs(ctx, nil) {
		host := a
		if h, _, err := net.SplitHostPort(a); err == nil {
			host = h
		}
		if ip := net.ParseIP(host); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, host)
		}
	}
	key := fmt.Sprint(dns, ips)
	if key == s.web.ownFor {
		return
	}
	if len(dns)+len(ips) == 0 {
		s.web.own.Store(nil)
		s.web.ownFor = key
		return
	}
	kp, err := s.cfg.CAs.Cluster.Issue(pki.Request{CommonName: "gravity-site", DNSNames: append([]string{"localhost"}, dns...),
		IPs: append([]net.IP{s.cfg.Self.IP, net.IPv4(127, 0, 0, 1)}, ips...), Usages: pki.UsageServer,
		Validity: pki.DefaultCertValidity, Now: s.cfg.Now()})
	if err != nil {
		s.cfg.Log.Warn("no certificate for the auth gateway's addresses", "error", err.Error())
		return
	}
	cert := kp.TLSCertificate()
	cert.Leaf = kp.Cert
	s.web.own.Store(&cert)
	s.web.ownFor = key
	s.cfg.Log.Info("serving a certificate with the auth gateway's addresses", "dns", dns, "ips", fmt.Sprint(ips))
}
