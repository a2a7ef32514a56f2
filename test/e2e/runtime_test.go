//go:build e2e

// Package e2e holds the end-to-end tests: real runtime binaries (make
// runtime) on test hosts. Run with `make test-e2e`.
package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/opengravity/gravity/internal/baseimage"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/runtime/node"
	"github.com/opengravity/gravity/internal/testhost"
)

// TestRuntime starts the runtime on a fresh test host: node Ready, a pod
// whose image comes from registry.local:5000 Running, a Job completed,
// CoreDNS answering for kubernetes.default and registry.local. A second
// host joins as a worker and a pod on it reaches a pod on the first. The
// first host then reboots (every process killed, /run and /tmp cleared)
// and comes back Ready with its pods. Nothing leaves the hosts' bridge.
func TestRuntime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	c := newCluster(t, ctx, "ge2e", "10.232.0.0/24")
	h1, n1 := c.addNode("n1", 1)

	start := time.Now()
	c.start(h1, n1)
	c.waitNodeReady(h1)
	t.Logf("node Ready %.1f s after gravity runtime start", time.Since(start).Seconds())
	c.waitRunning(h1)
	// What install's /rbac phase does for kubelets' certificates.
	rotation, err := config.CertRotationManifest()
	if err != nil {
		t.Fatal(err)
	}
	c.apply("rotation", string(rotation))
	c.pushImages()
	c.waitFor("the default service account", func() bool {
		_, err := c.tryKubectl("get", "serviceaccount", "default")
		return err == nil
	})

	c.apply("workloads", fmt.Sprintf(workloads, h1.IP))
	c.waitPhase("alpine", "Running")
	if img := c.kubectl("get", "pod", "alpine", "-o", "jsonpath={.spec.containers[0].image}"); img != "registry.local:5000/alpine:3.3" {
		t.Errorf("pod image %q", img)
	}
	c.kubectl("wait", "--for=condition=complete", "--timeout=60s", "job/hello")

	t.Run("dns", func(t *testing.T) { testDNS(t, c) })
	t.Run("join", func(t *testing.T) { testJoin(t, c) })
	t.Run("reboot", func(t *testing.T) { testReboot(t, c, n1) })

	if drops, err := c.net.EgressDrops(ctx); err != nil || drops != 0 {
		t.Errorf("packets dropped leaving the test hosts: %d (%v)", drops, err)
	}
}

// testDNS deploys CoreDNS from the base image's manifests and resolves
// from a pod.
func testDNS(t *testing.T, c *cluster) {
	n, err := node.LoadNode(c.master.Path(hostDir + "/n1.yaml"))
	if err == nil {
		n, err = n.WithDefaults()
	}
	if err != nil {
		t.Fatal(err)
	}
	dns, err := config.CoreDNSManifests(n, baseimage.ImageCoreDNS+":"+coreDNSVersion, 1)
	if err != nil {
		t.Fatal(err)
	}
	c.apply("coredns", string(dns))
	c.apply("dns-check", dnsCheck)
	c.kubectl("wait", "--for=condition=complete", "--timeout=120s", "job/dns")
	logs := c.kubectl("logs", "job/dns")
	t.Logf("answers:\n%s", logs)
	// busybox's nslookup applies the search path to dotless names only, so
	// kubernetes.default is asked for in full and as "kubernetes".
	for _, want := range []string{"Name:\tkubernetes.default.svc.cluster.local\nAddress: " + n.APIServiceIP().String(),
		"Name:\tregistry.local\nAddress: " + c.master.IP.String(), "can't find example.com: NXDOMAIN"} {
		if !strings.Contains(logs, want) {
			t.Errorf("DNS answers lack %q:\n%s", want, logs)
		}
	}
}

// testJoin starts a worker from certificates issued off the master's CA
// and fetches a page from a pod on the master from a pod on the worker.
// The worker's kubelet starts with a client certificate good for two
// minutes, which it must renew through a CSR on its own (kubelet asks for
// one at once when its store is empty, then at 70-90 % of each's life).
func testJoin(t *testing.T, c *cluster) {
	h2, n2 := c.addNode("n2", 2)
	n, err := node.LoadNode(h2.Path(n2))
	if err == nil {
		n, err = n.WithDefaults()
	}
	if err != nil {
		t.Fatal(err)
	}
	c.shortLivedKubelet(h2, n, 2*time.Minute)
	c.start(h2, n2)
	c.waitNodeReady(h2)
	c.waitRunning(h2)
	c.waitPhase("web", "Running")
	reach(t, c, "reach", h2.IP.String())
	t.Run("kubelet renews its certificate", func(t *testing.T) { testKubeletRotation(t, c, h2, n) })
}

// testKubeletRotation waits for the worker's kubelet to have renewed its
// two-minute client certificate: a new one, signed by the cluster CA for
// its own node name, good for far longer; the node stays Ready.
func testKubeletRotation(t *testing.T, c *cluster, h *testhost.Host, n config.Node) {
	// A link to the newest dated file, by its absolute path on the node:
	// read it there.
	current := n.Paths().KubeletRoot + "/pki/kubelet-client-current.pem"
	ca, err := pki.LoadCA(c.master.Path(n.Paths().PKI), pki.ClusterCAName)
	if err != nil {
		t.Fatal(err)
	}
	var renewed *x509.Certificate
	c.waitFor("the kubelet's client certificate renewed", func() bool {
		out, _, err := h.Run(c.ctx, "cat", current)
		if err != nil {
			return false
		}
		data := []byte(out)
		for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
			if block.Type != "CERTIFICATE" {
				continue
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err == nil && time.Until(cert.NotAfter) > time.Hour {
				renewed = cert
				return true
			}
		}
		return false
	})
	if renewed.Subject.CommonName != "system:node:"+n.Name || renewed.CheckSignatureFrom(ca.Cert) != nil {
		t.Errorf("renewed certificate for %q, signed by the cluster CA: %v", renewed.Subject.CommonName, renewed.CheckSignatureFrom(ca.Cert))
	}
	if csrs := c.kubectl("get", "csr", "-o", "jsonpath={.items[*].status.conditions[*].type}"); !strings.Contains(csrs, "Approved") {
		t.Errorf("no approved CSR: %q", csrs)
	}
	c.waitNodeReady(h)

	// Its serving certificate came the same way, approved by the master's
	// approver: what the kubelet serves on :10250 is the cluster CA's, for
	// the node's own name and address.
	var serving *x509.Certificate
	c.waitFor("the kubelet serving a certificate of the cluster CA", func() bool {
		conn, err := tls.Dial("tcp", net.JoinHostPort(h.IP.String(), "10250"), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			return false
		}
		defer conn.Close()
		serving = conn.ConnectionState().PeerCertificates[0]
		return serving.CheckSignatureFrom(ca.Cert) == nil
	})
	if serving.Subject.CommonName != "system:node:"+n.Name || len(serving.IPAddresses) == 0 || !serving.IPAddresses[0].Equal(h.IP.AsSlice()) {
		t.Errorf("serving certificate CN=%q IPs=%v", serving.Subject.CommonName, serving.IPAddresses)
	}
	// A request that is not a node's for itself is denied, with the reason.
	c.apply("foreign-csr", foreignCSR(t, n.Name))
	c.waitFor("the foreign request denied", func() bool {
		out, _ := c.tryKubectl("get", "csr", "e2e-foreign", "-o", "jsonpath={.status.conditions[0].type} {.status.conditions[0].message}")
		return strings.HasPrefix(out, "Denied") && strings.Contains(out, "not by a node")
	})
}

// foreignCSR is a kubelet-serving request for a node's name sent by the
// admin, not by the node.
func foreignCSR(t *testing.T, nodeName string) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: "system:node:" + nodeName, Organization: []string{"system:nodes"}},
		IPAddresses: []net.IP{net.ParseIP(nodeName)}}, key)
	if err != nil {
		t.Fatal(err)
	}
	req := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	return fmt.Sprintf(`apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata:
  name: e2e-foreign
spec:
  signerName: kubernetes.io/kubelet-serving
  usages: [digital signature, key encipherment, server auth]
  request: %s
`, req)
}

// reach runs a Job on nodeName that fetches the web pod's page by its pod
// IP, across nodes without NAT. With nc: the static busybox's wget crashes.
func reach(t *testing.T, c *cluster, job, nodeName string) {
	webIP := c.kubectl("get", "pod", "web", "-o", "jsonpath={.status.podIP}")
	c.apply(job, fmt.Sprintf(reachJob, job, nodeName, webIP))
	c.kubectl("wait", "--for=condition=complete", "--timeout=90s", "job/"+job)
	if out := c.kubectl("logs", "job/"+job); !strings.Contains(out, "hello from web on ") {
		t.Errorf("page fetched from the web pod: %q", out)
	}
}

// testReboot kills every process of the master's host and clears its /run
// and /tmp, then starts the node again.
func testReboot(t *testing.T, c *cluster, n1 string) {
	h1 := c.master
	if err := h1.Reboot(c.ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.run(h1, hostGravity, "runtime", "start", "--config", n1)
	c.waitNodeReady(h1)
	c.waitRunning(h1)
	t.Logf("node Ready again %.1f s after the reboot", time.Since(start).Seconds())
	c.waitFor("the pods back after the reboot", func() bool {
		out, _ := c.tryKubectl("get", "pods", "alpine", "web", "-o", "jsonpath={.items[*].status.containerStatuses[0].ready}")
		return out == "true true"
	})
	reach(t, c, "reach-after-reboot", c.net.Hosts()[1].IP.String())
}

const workloads = `apiVersion: v1
kind: Pod
metadata:
  name: alpine
spec:
  containers:
  - name: alpine
    image: "registry.local:5000/alpine:3.3"
    command: ["/bin/sleep", "90000"]
---
apiVersion: batch/v1
kind: Job
metadata:
  name: hello
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: hello
        image: "registry.local:5000/alpine:3.3"
        command: ["/bin/sh", "-c", "echo hello from a job"]
---
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  nodeName: "%s"
  containers:
  - name: web
    image: "registry.local:5000/alpine:3.3"
    command: ["/bin/sh", "-c", "mkdir -p /www && echo hello from web on $(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"]
`

const dnsCheck = `apiVersion: batch/v1
kind: Job
metadata:
  name: dns
spec:
  backoffLimit: 0
  activeDeadlineSeconds: 120
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: dns
        image: "registry.local:5000/alpine:3.3"
        command: ["/bin/sh", "-c", "until nslookup kubernetes.default.svc.cluster.local && nslookup registry.local; do sleep 1; done; nslookup kubernetes; nslookup example.com; true"]
`

const reachJob = `apiVersion: batch/v1
kind: Job
metadata:
  name: %s
spec:
  backoffLimit: 0
  activeDeadlineSeconds: 90
  template:
    spec:
      restartPolicy: Never
      nodeName: "%s"
      containers:
      - name: fetch
        image: "registry.local:5000/alpine:3.3"
        command: ["/bin/sh", "-c", "until printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 %s 8080; do sleep 1; done"]
`
