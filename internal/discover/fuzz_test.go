package discover

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzLocalName(f *testing.F) {
	for _, s := range []string{
		"alpine:3.3", "quay.io/gravitational/debian-tall:stretch", "docker.io/library/nginx:1",
		"localhost:5000/x/y", "nginx", "a@" + digest, "a:1@" + digest, "registry.local:5000/a:1",
		"[::1]:5000/a:1", "a/b/c/d:e", "UPPER", "", "a:", ":a", "a//b", "localhost", "host.io/",
	} {
		f.Add(s, DefaultRegistry)
	}
	f.Add("alpine", "127.0.0.1:5000")
	f.Fuzz(func(t *testing.T, ref, registry string) {
		local, err := LocalName(ref, registry)
		short := ShortName(ref)
		if err != nil {
			return
		}
		if _, err := parseRef(local); err != nil {
			t.Fatalf("LocalName(%q) = %q, which does not parse: %v", ref, local, err)
		}
		reg := strings.TrimSuffix(registry, "/")
		if !strings.HasPrefix(local, reg+"/") {
			t.Fatalf("LocalName(%q, %q) = %q: not in the registry", ref, registry, local)
		}
		again, err := LocalName(local, registry)
		if err != nil || again != local {
			t.Fatalf("LocalName is not idempotent: %q → %q → %q, %v", ref, local, again, err)
		}
		// The path is kept as written; only ":latest" may be added.
		if got := ShortName(local); got != short && got != short+":latest" {
			t.Fatalf("LocalName(%q) = %q changed the path %q to %q", ref, local, short, got)
		}
	})
}

// seedCorpus adds every YAML file of the package's testdata.
func seedCorpus(f *testing.F) {
	files, _ := filepath.Glob("testdata/rewrite/*.yaml")
	more, _ := filepath.Glob("testdata/v1/*.yaml")
	for _, p := range append(files, more...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"kind: List\nitems:\n- kind: Pod\n  spec: {containers: [{name: a, image: a}]}\n- {}\n",
		"a: &a [*a]\n",
		"kind: &k List\nitems: &i [{kind: *k, items: *i}]\n",
		"kind: Pod\nspec:\n  containers:\n  - image: |\n      a\n",
		"kind: Pod\nspec: {containers: [{image: !foo a}]}\n",
		"---\n...\n---\n",
		"kind: Pod\nspec:\n  containers:\n  - image: &x # c\n      a\n  - image: *x\n",
	} {
		f.Add([]byte(s))
	}
}

func FuzzParseResources(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := scanStream(data)
		if err != nil {
			var pe *posError
			if !errors.As(err, &pe) {
				t.Fatalf("error without position type: %v", err)
			}
			return
		}
		for _, fl := range s.fields {
			if _, err := parseRef(fl.ref); err != nil {
				t.Fatalf("invalid reference %q accepted", fl.ref)
			}
			if fl.owner == "" {
				t.Fatal("image without owner")
			}
		}
	})
}

// FuzzRewriteYAML checks the byte surgery: whenever a stream parses, its
// rewrite either succeeds, changing only image scalars, or fails for a
// known reason; it never produces a file that reads differently.
func FuzzRewriteYAML(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		before, err := scanStream(data)
		if err != nil {
			return
		}
		out, rws, err := RewriteYAML(data, DefaultRegistry)
		if err != nil {
			if errors.Is(err, ErrUnsupportedScalar) {
				return
			}
			t.Fatalf("stream parses but rewrite fails: %v\n%q", err, data)
		}
		after, err := scanStream(out)
		if err != nil || len(after.fields) != len(before.fields) {
			t.Fatalf("rewritten stream reads differently: %v\n%q", err, out)
		}
		if len(rws) == 0 && string(out) != string(data) {
			t.Fatalf("no rewrites but output changed:\n%q\n%q", data, out)
		}
	})
}
