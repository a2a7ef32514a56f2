//go:build e2e

package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

// benchAPI measures the cluster API of an installed node: the latency of
// an authenticated list (`GET /v1/resources/users` with an API token)
// under 50 concurrent clients, a login (its bcrypt check included), and
// the cluster service's memory after them.
func benchAPI(b *testing.B, ih *installHost) {
	ip := ih.h.IP.String()
	doc := "kind: user\nversion: v2\nmetadata: {name: agent@example.com}\nspec: {type: agent, roles: [\"@teleadmin\"]}\n---\n" +
		"kind: token\nversion: v2\nmetadata: {name: qwe123}\nspec: {user: agent@example.com}\n---\n" +
		"kind: user\nversion: v2\nmetadata: {name: bench}\nspec: {type: regular, roles: [\"@teleadmin\"], password: \"bench-password-1\"}\n"
	ih.put(writeTemp(b, doc), "/root/bench.yaml")
	ih.mustRun("gravity", "resource", "create", "/root/bench.yaml")

	caPEM, err := os.ReadFile(ih.h.Path("/var/lib/gravity/secrets/ca.crt"))
	if err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 64}}
	call := func(method, path, body, token string) (time.Duration, error) {
		req, err := http.NewRequest(method, "https://"+ip+":3009"+path, bytes.NewBufferString(body))
		if err != nil {
			return 0, err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if resp.StatusCode != http.StatusOK {
			return took, fmt.Errorf("%s %s: %s", method, path, resp.Status)
		}
		return took, nil
	}

	const clients, each = 50, 40
	var mu sync.Mutex
	var lat []time.Duration
	var failed int
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for range each {
				d, err := call(http.MethodGet, "/v1/resources/users", "", "qwe123")
				mu.Lock()
				if err != nil {
					failed++
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failed > 0 || len(lat) == 0 {
		b.Fatalf("%d of %d requests failed", failed, clients*each)
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "ms-api-list-p50")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "ms-api-list-p99")
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s-api-list")

	var logins []time.Duration
	for range 5 {
		d, err := call(http.MethodPost, "/v1/sessions", `{"user":"bench","password":"bench-password-1"}`, "")
		if err != nil {
			b.Fatal(err)
		}
		logins = append(logins, d)
	}
	slices.Sort(logins)
	b.ReportMetric(ms(logins[len(logins)/2]), "ms-login")

	_, byName := hostMemory(b, ih.h.Path("/proc"))
	b.ReportMetric(float64(byName["gravity runtime cluster-service"].rss)/(1<<20), "MiB-cluster-service-rss")
}
