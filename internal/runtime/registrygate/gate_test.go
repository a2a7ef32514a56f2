package registrygate

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opengravity/gravity/internal/pki"
)

// fakeRegistry answers every request on a unix socket and records it.
type fakeRegistry struct {
	mu   sync.Mutex
	seen []string
}

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.seen = append(f.seen, r.Method+" "+r.URL.Path+" host="+r.Host)
	f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if r.Method == http.MethodPost {
		w.Header().Set("Location", "/v2/x/blobs/uploads/1")
		w.WriteHeader(http.StatusAccepted)
		return
	}
	_, _ = w.Write(append([]byte("ok "), body...))
}

func (f *fakeRegistry) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}

// TestGate: through a real TLS listener, a registry client may pull and
// not push, the cluster's pusher may do both, a kubelet's certificate or
// another CA's may do nothing; denied requests never reach the registry.
func TestGate(t *testing.T) {
	ca, err := pki.NewCA("cluster", 2*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA("other", 2*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	issue := func(ca *pki.CA, cn, org string, u pki.Usage) tls.Certificate {
		req := pki.Request{CommonName: cn, Usages: u, Validity: time.Hour, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}
		if org != "" {
			req.Organization = []string{org}
		}
		kp, err := ca.Issue(req)
		if err != nil {
			t.Fatal(err)
		}
		return kp.TLSCertificate()
	}
	socket := filepath.Join(t.TempDir(), "registry.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	reg := &fakeRegistry{}
	backend := &http.Server{Handler: reg}
	go func() { _ = backend.Serve(ln) }()
	defer backend.Close()

	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Addr: addr, Socket: socket, Log: slog.New(slog.DiscardHandler),
			TLS: &tls.Config{Certificates: []tls.Certificate{issue(ca, "registry.local", "", pki.UsageServer)},
				ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}})
	}()
	client := func(cert tls.Certificate) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			Certificates: []tls.Certificate{cert}, RootCAs: ca.Pool(), ServerName: "127.0.0.1"}}}
	}
	node := client(issue(ca, "registry-client:n1", pki.RegistryClients, pki.UsageClient))
	pusher := client(issue(ca, "registry-pusher:n1", pki.RegistryPushers, pki.UsageClient))
	kubelet := client(issue(ca, "system:node:n1", pki.SystemNodes, pki.UsageClient))
	stranger := client(issue(other, "registry-pusher:x", pki.RegistryPushers, pki.UsageClient))
	waitServing(t, node, addr)

	for _, tc := range []struct {
		name   string
		c      *http.Client
		method string
		want   int // 0: the TLS handshake fails
	}{
		{"node pulls", node, http.MethodGet, http.StatusOK},
		{"node checks a blob", node, http.MethodHead, http.StatusOK},
		{"node pushes", node, http.MethodPost, http.StatusForbidden},
		{"node uploads", node, http.MethodPut, http.StatusForbidden},
		{"node deletes", node, http.MethodDelete, http.StatusForbidden},
		{"pusher pulls", pusher, http.MethodGet, http.StatusOK},
		{"pusher pushes", pusher, http.MethodPost, http.StatusAccepted},
		{"kubelet pulls", kubelet, http.MethodGet, http.StatusForbidden},
		{"kubelet pushes", kubelet, http.MethodPost, http.StatusForbidden},
		{"another CA's pusher", stranger, http.MethodPost, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(reg.requests())
			req, _ := http.NewRequest(tc.method, "https://"+addr+"/v2/gravitational/pause/blobs/uploads/", strings.NewReader("layer"))
			resp, err := tc.c.Do(req)
			if tc.want == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("answered %s", resp.Status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %s, want %d", resp.Status, tc.want)
			}
			reached := len(reg.requests()) > before
			if tc.want == http.StatusForbidden {
				var body struct {
					Errors []struct{ Code, Message string }
				}
				if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body.Errors) != 1 || body.Errors[0].Code != "DENIED" {
					t.Errorf("denial body %+v (%v)", body, err)
				}
				if reached {
					t.Error("a denied request reached the registry")
				}
			} else if !reached {
				t.Error("an allowed request did not reach the registry")
			}
		})
	}
	// The registry sees the name the client used, and its relative
	// Location comes back unchanged.
	if got := reg.requests(); !strings.HasSuffix(got[len(got)-1], "host="+addr) {
		t.Errorf("registry saw %q", got[len(got)-1])
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel: %v", err)
	}
}

func TestRunRefusesOptionalClientCerts(t *testing.T) {
	err := Run(context.Background(), Config{Addr: "127.0.0.1:0", TLS: &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven},
		Log: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "must be required") {
		t.Fatalf("err = %v", err)
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitServing(t *testing.T, c *http.Client, addr string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := c.Get("https://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			return
		}
		var op *net.OpError
		if time.Now().After(deadline) || !errors.As(err, &op) {
			t.Fatalf("gate not serving: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
