package accessproxy

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"github.com/opengravity/gravity/internal/access"
	"github.com/opengravity/gravity/internal/identity"
)

func (p *Proxy) kubeListener(ln net.Listener) net.Listener {
	return tls.NewListener(ln, &tls.Config{
		Certificates: []tls.Certificate{p.cfg.ServingCert},
		// Only users' certificates: a certificate of the cluster CA (a
		// node's, a component's) is no user.
		ClientCAs:  p.users.Pool(),
		ClientAuth: tls.RequireAndVerifyClientCert,
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
	})
}

func (p *Proxy) kubeServer() (*http.Server, error) {
	target, err := url.Parse(p.cfg.Kube.Host)
	if err != nil || target.Host == "" {
		return nil, fmt.Errorf("Kubernetes proxy: API server address %q: %v", p.cfg.Kube.Host, err)
	}
	tlsCfg, err := rest.TLSConfigFor(p.cfg.Kube)
	if err != nil {
		return nil, fmt.Errorf("Kubernetes proxy: %w", err)
	}
	// HTTP/1.1 to the API server: exec, attach and port-forward upgrade
	// the connection, which HTTP/2 cannot carry through a proxy.
	tlsCfg.NextProtos = []string{"http/1.1"}
	transport := &http.Transport{TLSClientConfig: tlsCfg, Proxy: nil, ForceAttemptHTTP2: false,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext, MaxIdleConnsPerHost: 32, IdleConnTimeout: 90 * time.Second}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = target.Host
		},
		Transport:     transport,
		FlushInterval: -1, // watches and logs stream
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.cfg.Log.Warn("Kubernetes proxy: API server request failed", "path", r.URL.Path, "error", err.Error())
			writeStatus(w, http.StatusBadGateway, "the cluster's API server did not answer the proxy: "+err.Error())
		},
	}
	return &http.Server{Handler: p.kubeHandler(rp), ReadHeaderTimeout: 30 * time.Second}, nil
}

// kubeHandler checks the user of every request and passes it on as them.
func (p *Proxy) kubeHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			writeStatus(w, http.StatusUnauthorized, "a certificate from `tsh login` is required")
			return
		}
		name, uid, err := access.X509User(r.TLS.VerifiedChains[0][0])
		if err != nil {
			writeStatus(w, http.StatusUnauthorized, err.Error())
			return
		}
		u, err := p.checkUser(r.Context(), name, uid)
		if err != nil {
			status := http.StatusInternalServerError
			if errors.Is(err, errRevoked) {
				status = http.StatusUnauthorized
				from, _, _ := net.SplitHostPort(r.RemoteAddr)
				p.audit(name, from, "T3010W", "kube.request.denied", err.Error(), nil)
			}
			writeStatus(w, status, err.Error())
			return
		}
		// Whatever the client says of who it is goes: the API server
		// sees only what the proxy read from the cluster.
		for k := range r.Header {
			if strings.HasPrefix(k, "Impersonate-") {
				r.Header.Del(k)
			}
		}
		r.Header.Del("Authorization")
		r.Header.Set("Impersonate-User", u.name)
		for _, g := range identity.KubernetesGroups(u.roles) {
			r.Header.Add("Impersonate-Group", g)
		}
		next.ServeHTTP(w, r)
	})
}

// writeStatus answers as the API server does, so kubectl prints the
// message.
func writeStatus(w http.ResponseWriter, code int, msg string) {
	reason := map[int]string{http.StatusUnauthorized: "Unauthorized", http.StatusForbidden: "Forbidden",
		http.StatusBadGateway: "ServiceUnavailable"}[code]
	if reason == "" {
		reason = "InternalError"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure",
		"message": msg, "reason": reason, "code": code})
}
