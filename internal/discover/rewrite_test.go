package discover

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestRewriteYAMLGolden rewrites each testdata/rewrite/*.yaml and compares
// with its .golden, which holds the output followed by the Rewrite list.
func TestRewriteYAMLGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/rewrite/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			out, rws, err := RewriteYAML(data, DefaultRegistry)
			if err != nil {
				t.Fatalf("RewriteYAML: %v", err)
			}
			var got bytes.Buffer
			got.Write(out)
			got.WriteString("\n#### rewrites\n")
			for _, rw := range rws {
				fmt.Fprintf(&got, "%d: %s -> %s\n", rw.Line, rw.From, rw.To)
			}
			golden := strings.TrimSuffix(in, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("got:\n%s\nwant:\n%s", got.Bytes(), want)
			}
		})
	}
}

// The seed's hook: only the image line changes, byte for byte.
func TestRewriteYAMLSeedHook(t *testing.T) {
	data, err := os.ReadFile("testdata/v1/install.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, rws, err := RewriteYAML(data, DefaultRegistry)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(string(data),
		"image: quay.io/gravitational/debian-tall:stretch",
		"image: registry.local:5000/gravitational/debian-tall:stretch", 1)
	if string(out) != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	wantRW := []Rewrite{{From: "quay.io/gravitational/debian-tall:stretch", To: "registry.local:5000/gravitational/debian-tall:stretch", Line: 14}}
	if !reflect.DeepEqual(rws, wantRW) {
		t.Errorf("rewrites %+v, want %+v", rws, wantRW)
	}
}

func TestRewriteYAMLUnchanged(t *testing.T) {
	for _, data := range []string{
		"",
		"# only a comment\n",
		"kind: Service\nmetadata: {name: s}\nspec: {image: x:1}\n",
		"kind: Pod\nspec:\n  containers:\n  - name: a\n    image: registry.local:5000/a:1\n",
		"replicas: 3\n",
	} {
		out, rws, err := RewriteYAML([]byte(data), DefaultRegistry)
		if err != nil || string(out) != data || len(rws) != 0 {
			t.Errorf("%q: got %q, %v, %v; want it unchanged", data, out, rws, err)
		}
	}
}

func TestRewriteYAMLErrors(t *testing.T) {
	cases := []struct {
		name, data, want string
		is               error
	}{
		{"literal block", "kind: Pod\nspec:\n  containers:\n  - name: a\n    image: >-\n      alpine:3.3\n", "Pod/<unnamed> (container a)", ErrUnsupportedScalar},
		{"invalid ref", "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: UPPER\n", "line 6: Pod/p (container a)", nil},
		{"syntax", "kind: Pod\nspec: [\n", "line 3", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := RewriteYAML([]byte(c.data), DefaultRegistry)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("err = %v, want %v", err, c.is)
			}
		})
	}
	if _, _, err := RewriteYAML([]byte("kind: Pod\n"), "bad/registry"); err != nil {
		t.Errorf("no images, bad registry: %v", err)
	}
	if _, _, err := RewriteYAML([]byte("kind: Pod\nspec: {containers: [{image: a}]}\n"), "bad/registry"); err == nil {
		t.Error("bad registry: no error")
	}
}
