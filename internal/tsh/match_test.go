package tsh

import (
	"strings"
	"testing"

	"github.com/opengravity/gravity/internal/clusterapi"
)

func TestMatch(t *testing.T) {
	nodes := []clusterapi.NodeInfo{
		{Name: "10.0.0.2", Hostname: "node-2", Address: "10.0.0.2", Labels: map[string]string{"role": "node", "hostname": "node-2"}},
		{Name: "10.0.0.1", Hostname: "node-1", Address: "10.0.0.1", Labels: map[string]string{"role": "node", "hostname": "node-1", "master": "true"}},
		{Name: "10.0.0.3", Hostname: "db-1", Address: "10.0.0.3", Labels: map[string]string{"role": "db", "hostname": "db-1"}},
	}
	for _, tc := range []struct {
		target string
		want   string // names, or the error
	}{
		{"role=node", "10.0.0.1 10.0.0.2"},
		{"role=node,master=true", "10.0.0.1"},
		{"role=node, hostname=node-2", "10.0.0.2"},
		{"node-2", "10.0.0.2"},
		{"10.0.0.3", "10.0.0.3"},
		{"role=web", `no node matches "role=web"`},
		{"node-9", `no node matches "node-9"`},
		{"=node", "want label=value"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			got, err := Match(nodes, tc.target)
			var names []string
			for _, n := range got {
				names = append(names, n.Name)
			}
			s := strings.Join(names, " ")
			if err != nil {
				s = err.Error()
			}
			if !strings.Contains(s, tc.want) {
				t.Errorf("Match(%q) = %q, want %q", tc.target, s, tc.want)
			}
		})
	}
}

// FuzzMatch: any target is matched or refused, never a panic, and what
// matches is among the nodes.
func FuzzMatch(f *testing.F) {
	for _, s := range []string{"role=node", "a=b,c=d", "node-1", "=", ",,,", "a==b", "role=node,=x"} {
		f.Add(s)
	}
	nodes := []clusterapi.NodeInfo{{Name: "n1", Address: "10.0.0.1", Labels: map[string]string{"role": "node", "": "x"}}}
	f.Fuzz(func(t *testing.T, target string) {
		got, err := Match(nodes, target)
		if err == nil && (len(got) != 1 || got[0].Name != "n1") {
			t.Errorf("Match(%q) = %+v", target, got)
		}
	})
}

func TestRemotePath(t *testing.T) {
	for _, tc := range []struct {
		in     string
		remote bool
	}{
		{"root@node-1:/etc/hosts", true},
		{"node-1:relative", true},
		{"./a:b", false},
		{"/tmp/x", false},
		{":nohost", false},
		{"local", false},
	} {
		if _, ok := remotePath(tc.in); ok != tc.remote {
			t.Errorf("remotePath(%q) = %v", tc.in, ok)
		}
	}
	if got := shellQuote(`it's "x"`); got != `'it'\''s "x"'` {
		t.Errorf("shellQuote = %s", got)
	}
}
