//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/opengravity/gravity/internal/baseimage"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/runtime/node"
	"github.com/opengravity/gravity/internal/store"
	"github.com/opengravity/gravity/internal/testhost"
	"github.com/opengravity/gravity/internal/version"
)

// repo is the repository root. Test hosts are not meant to read it: what
// they run is copied into them (a checkout under /tmp, which hosts do not
// share, must work as well as any).
var repo = func() string { d, _ := filepath.Abs("../.."); return d }()

// Where the runtime fixture puts what a host runs, in the host's own /opt.
const (
	hostDir     = "/opt/gravity-e2e"
	hostGravity = hostDir + "/gravity"
	hostBin     = hostDir + "/bin"
)

const (
	adminConf = "/var/lib/gravity/secrets/kubeconfig/admin.conf"
	podCIDR   = "10.244.0.0/16"
)

// cluster is a network of test hosts running the runtime from `make
// runtime`'s binaries and the gravity binary built for it.
type cluster struct {
	t                  testing.TB
	ctx                context.Context
	net                *testhost.Network
	bin, work, gravity string
	master             *testhost.Host
	cgroupRoots        []string
}

// newCluster makes a test network named prefix on subnet (a /24); tests
// that may run at once need their own of both.
func newCluster(t testing.TB, ctx context.Context, prefix, subnet string) *cluster {
	bin := filepath.Join(repo, "build/runtime/bin")
	if _, err := os.Stat(filepath.Join(bin, "kube")); err != nil {
		t.Fatalf("no runtime binaries in %s: run `make runtime` first", bin)
	}
	c := &cluster{t: t, ctx: ctx, bin: bin, work: filepath.Join(repo, "build/e2e")}
	c.gravity = goBuild(t, c.work, "gravity")
	// Cleanups run last-registered first: this one, registered before the
	// network's, runs once the hosts and their containers are gone.
	t.Cleanup(c.removeCgroups)
	net, err := testhost.NewNetwork(ctx, testhost.Options{Prefix: prefix, Subnet: subnet, Routed: []string{podCIDR}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = net.Close() })
	c.net = net
	return c
}

// addNode makes a host and its node config (the n-th pod subnet); the
// first node is the master and makes the cluster's CA, later ones get
// their certificates from it as `gravity join` will.
func (c *cluster) addNode(name string, index int) (*testhost.Host, string) {
	t := c.t
	h, err := c.net.AddHost(c.ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	ip := h.IP.String()
	roles, masterIP := "[node]", ""
	if c.master == nil {
		roles, masterIP = "[master, node]", ip
	} else {
		masterIP = c.master.IP.String()
	}
	// The binaries, copied into the host as a node would get them.
	if out, errOut, err := h.Run(c.ctx, "mkdir", "-p", hostDir); err != nil {
		t.Fatalf("mkdir %s: %v\n%s%s", hostDir, err, out, errOut)
	}
	for src, dst := range map[string]string{c.gravity: hostGravity, c.bin: hostBin} {
		if err := h.CopyIn(src, dst); err != nil {
			t.Fatal(err)
		}
	}
	nodeYAML := hostDir + "/" + name + ".yaml"
	writeFile(t, h.Path(nodeYAML), fmt.Sprintf("ip: %s\nroles: %s\nclusterName: e2e\nmasterIPs: [%s]\npodCIDR: %s\nnodePodCIDR: 10.244.%d.0/24\nbinDir: %s\n",
		ip, roles, masterIP, podCIDR, index, hostBin))
	n, err := node.LoadNode(h.Path(nodeYAML))
	if err == nil {
		n, err = n.WithDefaults()
	}
	if err != nil {
		t.Fatal(err)
	}
	c.cgroupRoots = append(c.cgroupRoots, n.CgroupRoot)
	if c.master == nil {
		c.master = h
		err = node.Bootstrap(h.Path("/"), n, "e2e")
	} else {
		err = c.issue(h, n)
	}
	if err != nil {
		t.Fatal(err)
	}
	return h, nodeYAML
}

func (c *cluster) issue(h *testhost.Host, n config.Node) error {
	cs, err := pki.LoadCASet(c.master.Path(n.Paths().PKI))
	if err != nil {
		return err
	}
	return node.IssueNode(h.Path("/"), cs, n)
}

// shortLivedKubelet gives node n's kubelet a client certificate that
// expires in d, issued like any other from the master's CA: kubelet must
// renew it through a CSR long before that.
func (c *cluster) shortLivedKubelet(h *testhost.Host, n config.Node, d time.Duration) {
	t := c.t
	cs, err := pki.LoadCASet(c.master.Path(n.Paths().PKI))
	if err != nil {
		t.Fatal(err)
	}
	pn := n.PKINode()
	pn.Validity = d
	certs, err := pki.NodeCerts(cs, pn)
	if err != nil {
		t.Fatal(err)
	}
	kcs, err := config.Kubeconfigs(n, cs.Cluster.Cert, certs)
	if err != nil {
		t.Fatal(err)
	}
	path := n.Paths().Kubeconfig(config.KubeconfigKubelet)
	if err := config.Write(h.Path("/"), map[string][]byte{path: kcs[path]}, pki.KeyMode); err != nil {
		t.Fatal(err)
	}
}

// removeCgroups removes the cgroups kubelet made on the shared kernel.
func (c *cluster) removeCgroups() {
	for _, root := range c.cgroupRoots {
		mi, err := os.Open("/proc/self/mountinfo")
		if err != nil {
			c.t.Error(err)
			return
		}
		err = node.RemoveCgroups(mi, root)
		mi.Close()
		if err != nil {
			c.t.Errorf("cgroups left: %v", err)
		}
	}
}

// start runs `gravity runtime start` on h and stops it at the end.
func (c *cluster) start(h *testhost.Host, nodeYAML string) {
	c.run(h, hostGravity, "runtime", "start", "--config", nodeYAML)
	c.t.Cleanup(func() { _, _, _ = h.Run(context.Background(), hostGravity, "runtime", "stop") })
}

// kubectl runs on the master with the admin's credentials.
func (c *cluster) kubectl(args ...string) string {
	c.t.Helper()
	out, err := c.tryKubectl(args...)
	if err != nil {
		c.dumpLogs()
		c.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (c *cluster) tryKubectl(args ...string) (string, error) {
	out, errOut, err := c.master.Run(c.ctx, hostBin+"/kubectl", append([]string{"--kubeconfig", adminConf}, args...)...)
	if err != nil {
		out += errOut
	}
	return strings.TrimSpace(out), err
}

func (c *cluster) run(h *testhost.Host, name string, args ...string) string {
	c.t.Helper()
	out, errOut, err := h.Run(c.ctx, name, args...)
	if err != nil {
		c.t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, errOut)
	}
	return strings.TrimSpace(out)
}

// waitFor polls ok for up to two minutes, which anything here takes less
// than on these machines.
func (c *cluster) waitFor(what string, ok func() bool) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 2*time.Minute)
	defer cancel()
	for !ok() {
		select {
		case <-ctx.Done():
			c.dumpLogs()
			c.t.Fatalf("timed out waiting for %s", what)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// dumpLogs shows each host's runtime status and the end of every
// component's log, to tell why a wait failed.
func (c *cluster) dumpLogs() {
	// GRAVITY_E2E_HOLD=1 keeps the hosts up for a look (hack/testhost run).
	if os.Getenv("GRAVITY_E2E_HOLD") != "" {
		defer time.Sleep(10 * time.Minute)
	}
	for _, args := range [][]string{{"get", "pods", "-A", "-o", "wide"}, {"get", "events", "-A"},
		{"logs", "-n", "kube-system", "deploy/coredns", "--tail=20"}} {
		out, _ := c.tryKubectl(args...)
		c.t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
	}
	raw, _ := exec.Command("iptables", "-t", "raw", "-L", "PREROUTING", "-v", "-n").CombinedOutput()
	c.t.Logf("bridge rules:\n%s", raw)
	for _, h := range c.net.Hosts() {
		for _, cmd := range [][]string{{"ip", "route"}, {"cat", "/proc/sys/net/ipv4/ip_forward"}, {"iptables", "-S", "FORWARD", "-v"}} {
			out, errOut, _ := h.Run(context.Background(), cmd[0], cmd[1:]...)
			c.t.Logf("%s: %s:\n%s%s", h.Name, strings.Join(cmd, " "), out, errOut)
		}
		out, _, _ := h.Run(context.Background(), hostGravity, "runtime", "status")
		c.t.Logf("%s: gravity runtime status:\n%s", h.Name, out)
		logs, _ := filepath.Glob(h.Path("/var/log/gravity/*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			c.t.Logf("%s: %s:\n%s", h.Name, filepath.Base(l), strings.Join(lines[max(0, len(lines)-15):], "\n"))
		}
	}
}

// waitRunning waits for the runtime's every component on h.
func (c *cluster) waitRunning(h *testhost.Host) {
	c.waitFor("every component ready on "+h.Name, func() bool {
		out, _, _ := h.Run(c.ctx, hostGravity, "runtime", "status", "-o", "json")
		return strings.Contains(out, `"state": "running"`)
	})
}

func (c *cluster) waitNodeReady(h *testhost.Host) {
	c.waitFor("node "+h.IP.String()+" Ready", func() bool {
		out, _ := c.tryKubectl("get", "node", h.IP.String(), "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		return out == "True"
	})
}

func (c *cluster) waitPhase(pod, phase string) {
	c.waitFor("pod "+pod+" "+phase, func() bool {
		out, _ := c.tryKubectl("get", "pod", pod, "-o", "jsonpath={.status.phase}")
		return out == phase
	})
}

func (c *cluster) apply(name, manifests string) {
	path := hostDir + "/" + name + ".yaml"
	writeFile(c.t, c.master.Path(path), manifests)
	c.kubectl("apply", "-f", path)
}

// pushImages fills the master's registry over mTLS from the base image
// (`make base`), as install's export phase will: our pause (the sandbox
// image) and CoreDNS; and a busybox stand-in for the walkthrough's
// alpine:3.3.
func (c *cluster) pushImages() {
	t := c.t
	tr := registryTransport(t, c.master.Path("/var/lib/gravity/secrets"))
	s := baseImageStore(t, c.ctx)
	registry := c.master.IP.String() + ":5000/"
	for _, ref := range []string{baseimage.ImagePause + ":" + version.Version, baseimage.ImageCoreDNS + ":" + coreDNSVersion} {
		img, _, err := s.Image(ref, v1.Platform{OS: "linux", Architecture: "amd64"})
		if err != nil {
			t.Fatal(err)
		}
		push(t, strings.Replace(ref, config.RegistryAddr+"/", registry, 1), img, tr)
	}
	push(t, registry+"alpine:3.3", busyboxImage(t), tr)
}

// coreDNSVersion is the tag of the base image's CoreDNS image.
const coreDNSVersion = "1.15.0"

// baseImageStore unpacks the base image's packages into a store.
func baseImageStore(t testing.TB, ctx context.Context) *store.Store {
	base := filepath.Join(repo, "build/base-images/gravity-"+version.Version+".tar")
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-xf", base, "-C", dir, "packages").CombinedOutput(); err != nil {
		t.Fatalf("unpack %s (make base): %v\n%s", base, err, out)
	}
	s, err := store.Open(filepath.Join(dir, "store"))
	if err == nil {
		_, err = s.Load(ctx, filepath.Join(dir, "packages"))
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// busyboxImage has Debian's static busybox with the applets the tests use.
func busyboxImage(t testing.TB) v1.Image {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Fatal("needs Debian's busybox-static for the test image")
	}
	links := map[string]string{}
	for _, a := range []string{"sh", "sleep", "echo", "nslookup", "nc", "httpd", "mkdir", "cat", "hostname"} {
		links["bin/"+a] = "busybox"
	}
	l, err := baseimage.BuildLayer(baseimage.LayerSpec{
		Files: []baseimage.ImageFile{{Path: "bin/busybox", Source: "/bin/busybox"}}, Symlinks: links}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	img, err := baseimage.BuildImage(baseimage.ImageSpec{Ref: "alpine:3.3", Layers: []v1.Layer{l}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func registryTransport(t testing.TB, secrets string) http.RoundTripper {
	// The cluster's own push identity: only it may push.
	cert, err := tls.LoadX509KeyPair(filepath.Join(secrets, "registry-pusher.crt"), filepath.Join(secrets, "registry-pusher.key"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(secrets, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool}}
}

func push(t testing.TB, ref string, img v1.Image, tr http.RoundTripper) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithTransport(tr)); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
}

func goBuild(t testing.TB, dir, cmd string) string {
	t.Helper()
	out := filepath.Join(dir, cmd)
	c := exec.Command("go", "build", "-o", out, "./cmd/"+cmd)
	c.Dir, c.Env = repo, append(os.Environ(), "CGO_ENABLED=0")
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", cmd, err, b)
	}
	return out
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
