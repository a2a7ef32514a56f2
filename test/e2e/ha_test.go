//go:build e2e

package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// haCluster is the multi-node cluster the HA scenarios share: installed
// once on h1, grown by joins.
type haCluster struct {
	*installHost
	hosts map[string]*installHost
	token string
}

func (c *haCluster) host(t *testing.T, name string) *installHost {
	if h, ok := c.hosts[name]; ok {
		return h
	}
	h, err := c.net.AddHost(c.ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	ih := &installHost{t: c.t, ctx: c.ctx, net: c.net, h: h, work: c.work}
	c.t.Cleanup(func() { ih.removeCgroups() })
	ih.put(c.h.Path("/usr/local/bin/gravity"), "/root/gravity")
	c.hosts[name] = ih
	return ih
}

// join runs the walkthrough's join on host name and returns its output.
func (c *haCluster) join(t *testing.T, name string, args ...string) string {
	h := c.host(t, name)
	start := time.Now()
	out := h.mustRun("/root/gravity", append([]string{"join", c.h.IP.String(), "--token=" + c.token}, args...)...)
	t.Logf("%s: gravity join %s (%v):\n%s", name, strings.Join(args, " "), time.Since(start).Round(time.Millisecond), out)
	if !strings.Contains(out, "Joined cluster in") {
		t.Fatalf("%s: no success line", name)
	}
	return out
}

// TestHA: install on h1; h2 and h3 join as masters with only the gravity
// binary, as the walkthrough does.
func TestHA(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	ih := newInstallHost(t, ctx, "gha", "10.236.0.0/24")
	v1 := ih.unpack("v1", ih.buildImage(filepath.Join(repo, "examples/gravity101/v1"), "v1"))
	start := time.Now()
	ih.mustRun(filepath.Join(v1, "gravity"), "install", "--cloud-provider=generic")
	t.Logf("install took %v", time.Since(start).Round(time.Millisecond))
	c := &haCluster{installHost: ih, hosts: map[string]*installHost{},
		token: strings.TrimSpace(ih.mustRun("gravity", "status", "--token"))}

	t.Run("masters", func(t *testing.T) {
		c.join(t, "h2")
		out := c.hosts["h2"].mustRun("kubectl", "get", "nodes")
		t.Logf("kubectl get nodes on h2:\n%s", out)
	})
}
