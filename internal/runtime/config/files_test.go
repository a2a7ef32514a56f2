package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/opengravity/gravity/internal/pki"
)

func TestFilesPerRole(t *testing.T) {
	for _, tc := range []struct {
		node      Node
		want, not []string
	}{
		{testMaster(),
			[]string{"config/containerd.toml", "config/kubelet.yaml", "config/admission.yaml", "config/registry.yaml", "config/Corefile"},
			nil},
		{testWorker(),
			[]string{"config/containerd.toml", "config/kubelet.yaml", "config/kube-proxy.yaml", "config/resolv.conf",
				"cni/net.d/10-gravity.conflist", "containerd/certs.d/registry.local:5000/hosts.toml"},
			[]string{"config/admission.yaml", "config/registry.yaml", "config/Corefile"}},
	} {
		files, err := Files(tc.node)
		if err != nil {
			t.Fatal(err)
		}
		for _, rel := range tc.want {
			if _, ok := files["/var/lib/gravity/"+rel]; !ok {
				t.Errorf("%s: no %s", tc.node.IP, rel)
			}
		}
		for _, rel := range tc.not {
			if _, ok := files["/var/lib/gravity/"+rel]; ok {
				t.Errorf("%s: has %s", tc.node.IP, rel)
			}
		}
		for p := range files {
			if strings.Contains(p, "/secrets/") {
				t.Errorf("Files returned a secret: %s", p)
			}
		}
	}
}

func TestWrite(t *testing.T) {
	root := t.TempDir()
	files, err := Files(testWorker())
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(root, files, 0o644); err != nil {
		t.Fatal(err)
	}
	for p, want := range files {
		got, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s: content differs", p)
		}
	}
	// A second write replaces in place and leaves no temporary files.
	if err := Write(root, files, 0o600); err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", p)
		}
		if err == nil && !d.IsDir() {
			if fi, _ := d.Info(); fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v", p, fi.Mode())
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"relative/path", "/a/../../etc/passwd"} {
		if err := Write(root, map[string][]byte{bad: nil}, 0o644); err == nil {
			t.Errorf("Write accepted %q", bad)
		}
	}
}

func TestKubeconfigs(t *testing.T) {
	now := time.Now()
	cs, err := pki.NewCASet("example", pki.DefaultCAValidity, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		node   Node
		server string
		names  []string
	}{
		{testMaster(), "https://192.0.2.10:6443", []string{"admin", "controller-manager", "scheduler", "kubelet", "kube-proxy", "csr-approver", "cluster-service"}},
		{testWorker(), "https://127.0.0.1:6443", []string{"kubelet", "kube-proxy"}},
	} {
		n, _ := tc.node.WithDefaults()
		certs, err := pki.NodeCerts(cs, n.PKINode())
		if err != nil {
			t.Fatal(err)
		}
		kcs, err := Kubeconfigs(tc.node, cs.Cluster.Cert, certs)
		if err != nil {
			t.Fatal(err)
		}
		if len(kcs) != len(tc.names) {
			t.Errorf("%s: %d kubeconfigs, want %v", n.Name, len(kcs), tc.names)
		}
		for _, name := range tc.names {
			data, ok := kcs[n.Paths().Kubeconfig(name)]
			if !ok {
				t.Errorf("%s: no %s kubeconfig", n.Name, name)
				continue
			}
			var kc struct {
				Clusters []struct {
					Cluster struct{ Server string }
				}
				Users []struct{ Name string }
			}
			if err := yaml.Unmarshal(data, &kc); err != nil {
				t.Fatal(err)
			}
			if len(kc.Clusters) != 1 || kc.Clusters[0].Cluster.Server != tc.server {
				t.Errorf("%s/%s: server %+v, want %s", n.Name, name, kc.Clusters, tc.server)
			}
			if name == "kubelet" && kc.Users[0].Name != "system:node:"+n.Name {
				t.Errorf("kubelet user %q", kc.Users[0].Name)
			}
		}
		delete(certs, pki.KubeProxy)
		if _, err := Kubeconfigs(tc.node, cs.Cluster.Cert, certs); err == nil {
			t.Error("Kubeconfigs without the kube-proxy pair succeeded")
		}
		if _, err := Kubeconfigs(tc.node, nil, certs); err == nil {
			t.Error("Kubeconfigs without a CA succeeded")
		}
	}
}

// hostPathRe finds absolute paths outside /srv, the test node's root.
var hostPathRe = regexp.MustCompile(`(?:^|[\s"'=\[:])/(?:var|run|opt|etc|usr|tmp)/`)

func TestPaths(t *testing.T) {
	n := testWorker()
	n.StateDir, n.RunDir, n.LogDir, n.BinDir = "/srv/s", "/srv/r", "/srv/l", "/srv/b"
	n, err := n.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	p := n.Paths()
	for _, tc := range []struct{ got, want string }{
		{p.Cert(pki.EtcdCAName), "/srv/s/secrets/etcd/ca.crt"},
		{p.Key(pki.ServiceAccountKeyName), "/srv/s/secrets/sa.key"},
		{p.SAPublicKey(), "/srv/s/secrets/sa.pub"},
		{p.Cert(pki.FrontProxyCAName), "/srv/s/secrets/front-proxy-ca.crt"},
		{p.ContainerdSocket, "/srv/r/containerd/containerd.sock"},
		{p.CNIBin, "/srv/b"},
		{p.PodLogs, "/srv/l/pods"},
		{p.Log("etcd"), "/srv/l/etcd.log"},
		{p.Bin("runc"), "/srv/b/runc"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
	// Every path the components get lies under the node's own directories.
	files, err := Files(n)
	if err != nil {
		t.Fatal(err)
	}
	for path := range files {
		if !strings.HasPrefix(path, "/srv/") {
			t.Errorf("%s outside the node's directories", path)
		}
	}
	for _, data := range files {
		if m := hostPathRe.FindString(string(data)); m != "" {
			t.Errorf("a generated file names the host path %q:\n%s", m, data)
		}
	}
}
