package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// pod is a control-plane component as the collector reports it.
func pod(args ...string) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": filepath.Base(args[0]), "namespace": "kube-system"},
		"spec":     map[string]any{"containers": []any{map[string]any{"name": "c", "command": toAny(args)}}}}
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func statusOf(t *testing.T, n *node, id string) string {
	t.Helper()
	checks, modules, err := loadChecks()
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) < 70 {
		t.Fatalf("%d CIS checks loaded", len(checks))
	}
	results, err := evaluate(context.Background(), checks, modules, n)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.ID == id {
			return r.Status
		}
	}
	t.Fatalf("no check %s", id)
	return ""
}

// TestRules: the real rules pass, fail or find no input as the command
// line and the node's files say; the scan is not a hard-coded answer.
func TestRules(t *testing.T) {
	info := map[string]any{"kubePKIKeyFilePermissions": values([]any{600, 644})}
	nodeInfo := []map[string]any{{"apiVersion": "v1", "kind": "NodeInfo", "type": "master", "info": info}}
	for _, tc := range []struct {
		name string
		n    *node
		id   string
		want string
	}{
		{"encryption set", &node{Pods: []map[string]any{pod("/usr/lib/gravity/bin/kube-apiserver", "--encryption-provider-config=/x")}, NodeInfo: nodeInfo}, "KCV0030", "PASS"},
		{"encryption missing", &node{Pods: []map[string]any{pod("/usr/lib/gravity/bin/kube-apiserver", "--profiling=false")}, NodeInfo: nodeInfo}, "KCV0030", "FAIL"},
		{"no apiserver seen", &node{Pods: []map[string]any{pod("/usr/lib/gravity/bin/kube", "kube-apiserver")}, NodeInfo: nodeInfo}, "KCV0030", "SKIPPED"},
		{"a key 644", &node{NodeInfo: nodeInfo}, "KCV0067", "FAIL"},
		{"kubelet not seen", &node{NodeInfo: nodeInfo}, "KCV0079", "SKIPPED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := statusOf(t, tc.n, tc.id); got != tc.want {
				t.Errorf("%s = %s, want %s", tc.id, got, tc.want)
			}
		})
	}
}

// TestCollect: command lines from /proc become Pods, a kubelet's config
// file its keys, and file modes the collector's numbers.
func TestCollect(t *testing.T) {
	root := t.TempDir()
	write := func(path, data string, mode os.FileMode) {
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("proc/10/cmdline", "/usr/lib/gravity/bin/kube-apiserver\x00--anonymous-auth=false\x00", 0o444)
	write("proc/11/cmdline", "/usr/lib/gravity/bin/kubelet\x00--config=/state/config/kubelet.yaml\x00--hostname-override=10.0.0.1\x00", 0o444)
	write("proc/12/cmdline", "/bin/sh\x00", 0o444)
	write("state/config/kubelet.yaml", "readOnlyPort: 0\nauthentication:\n  anonymous:\n    enabled: false\ntlsCipherSuites: [A, B]\n", 0o600)
	write("state/config/node.yaml", "ip: 10.0.0.1\n", 0o644)
	for _, f := range []string{"admin", "controller-manager", "scheduler", "kube-proxy", "kubelet"} {
		write("state/secrets/kubeconfig/"+f+".conf", "x", 0o600)
	}
	write("state/secrets/ca.crt", "x", 0o600)
	write("state/secrets/ca.key", "x", 0o600)
	if err := os.MkdirAll(filepath.Join(root, "state/etcd"), 0o700); err != nil {
		t.Fatal(err)
	}
	write("etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0o644)
	write("etc/group", "root:x:0:\n", 0o644)
	n, err := collect(root, "/state")
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Pods) != 2 {
		t.Fatalf("%d pods, want the apiserver and kubelet", len(n.Pods))
	}
	info := n.NodeInfo[0]["info"].(map[string]any)
	for key, want := range map[string]string{
		"kubeAPIServerSpecFilePermission":              "[644]",
		"kubeletConfigYamlConfigurationFilePermission": "[600]",
		"etcdDataDirectoryPermissions":                 "[700]",
		"kubeletReadOnlyPortArgumentSet":               "[0]",
		"kubeletAnonymousAuthArgumentSet":              "[false]",
		"kubeletHostnameOverrideArgumentSet":           "[10.0.0.1]",
		"kubeletOnlyUseStrongCryptographic":            "[A B]",
		"kubePKIKeyFilePermissions":                    "[600]",
	} {
		v, ok := info[key].(map[string]any)
		if !ok {
			t.Errorf("%s missing", key)
			continue
		}
		if got := fmt.Sprint(v["values"]); got != want {
			t.Errorf("%s = %s, want %s", key, got, want)
		}
	}
	if owner := info["adminConfFileOwnership"].(map[string]any)["values"].([]any)[0]; owner != "root:root" && os.Getuid() == 0 {
		t.Errorf("owner %v", owner)
	}
}
