package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseVersions(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]string
		err      string
	}{
		{"assignments and comments", "# c\nA_1 := v1\n\nB = 2\nC:=x # no\n", nil, "line 5"},
		{"hash in value", "A := v1#x\n", nil, "line 1"},
		{"ok", "# c\nA_1 := v1\n\n  B = 2  \n", map[string]string{"A_1": "v1", "B": "2"}, ""},
		{"empty", "", map[string]string{}, ""},
		{"duplicate", "A := 1\nA := 2\n", nil, "A set twice"},
		{"conditional", "ifeq ($(X),1)\nA := 1\nendif\n", nil, "line 1"},
		{"no value", "A :=\n", nil, "line 1"},
		{"lower case", "a := 1\n", nil, "line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseVersions([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func FuzzParseVersions(f *testing.F) {
	if data, err := os.ReadFile("../../versions.mk"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("A := 1\n# x\nB = v2.0.0\n"))
	f.Add([]byte("A := 1\nA := 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		vars, err := parseVersions(data)
		if err != nil {
			return
		}
		// Whatever it accepts has the shape the build relies on: names
		// that make accepts, values that are one word.
		for k, v := range vars {
			if k == "" || v == "" || strings.ContainsAny(k+v, " \t\r\n#") {
				t.Fatalf("accepted %q = %q", k, v)
			}
		}
	})
}

// The repository's versions.mk and runtime/*/go.mod agree: what `make
// runtime` checks before building, checked on every `make test` too.
func TestRepositoryPinsAgree(t *testing.T) {
	data, err := os.ReadFile("../../versions.mk")
	if err != nil {
		t.Fatal(err)
	}
	vars, err := parseVersions(data)
	if err != nil {
		t.Fatal(err)
	}
	// go mod edit reads the go.mod files in a child process, which go test's
	// cache does not see; reading them here makes an edit rerun this test.
	for _, p := range pins {
		if _, err := os.ReadFile(filepath.Join("../../runtime", p.Dir, "go.mod")); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := checkPins(ctx, "../../runtime", vars, pins); err != nil {
		t.Fatal(err)
	}
	if err := checkStaging(ctx, "../../runtime/kube", vars["KUBERNETES_VERSION"], kubeStaging); err != nil {
		t.Fatal(err)
	}
}

func writeGoMod(t *testing.T, dir, body string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/m\n\ngo 1.26\n"+body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckPins(t *testing.T) {
	root := t.TempDir()
	writeGoMod(t, filepath.Join(root, "a"), "require example.com/up v1.2.3\n")
	ps := []pin{{"a", "example.com/up", "UP_VERSION"}}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		vars map[string]string
		pins []pin
		err  string
	}{
		{"agree", map[string]string{"UP_VERSION": "v1.2.3"}, ps, ""},
		{"bumped in versions.mk only", map[string]string{"UP_VERSION": "v1.2.4"},
			ps, "a/go.mod requires example.com/up v1.2.3, versions.mk UP_VERSION = v1.2.4"},
		{"unset", map[string]string{}, ps, "does not set UP_VERSION"},
		{"not required", map[string]string{"UP_VERSION": "v1.2.3"},
			[]pin{{"a", "example.com/other", "UP_VERSION"}}, "requires example.com/other (nothing)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPins(ctx, root, tc.vars, tc.pins)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("checkPins: %v, want %q", err, tc.err)
			}
		})
	}
	if err := checkPins(ctx, root, map[string]string{"X": "v1"}, []pin{{"missing", "p", "X"}}); err == nil {
		t.Fatal("checkPins of a missing module succeeded")
	}
}

func TestCheckStaging(t *testing.T) {
	dir := t.TempDir()
	writeGoMod(t, dir, "replace (\n\tk8s.io/api => k8s.io/api v0.37.2\n\tk8s.io/kubelet => k8s.io/kubelet v0.37.1\n)\n")
	ctx := context.Background()
	if err := checkStaging(ctx, dir, "v1.37.2", []string{"k8s.io/api"}); err != nil {
		t.Fatalf("agreeing replace: %v", err)
	}
	err := checkStaging(ctx, dir, "v1.37.2", []string{"k8s.io/api", "k8s.io/kubelet", "k8s.io/kubectl"})
	if err == nil || !strings.Contains(err.Error(), "k8s.io/kubelet@v0.37.1") ||
		!strings.Contains(err.Error(), "replace k8s.io/kubectl => (nothing)") {
		t.Fatalf("checkStaging: %v, want kubelet stale and kubectl missing", err)
	}
	if err := checkStaging(ctx, dir, "2.0.0", nil); err == nil {
		t.Fatal("checkStaging accepted a Kubernetes version without v1.")
	}
}

func TestTargets(t *testing.T) {
	vars := map[string]string{"KUBERNETES_VERSION": "v1.37.2", "CONTAINERD_VERSION": "v2.4.2", "HELM_VERSION": "v3.22.0"}
	ts := targets(vars, stamps{KubeBuildDate: "2026-10-27T12:01:04Z", HelmKubeMinor: "37"})
	dirs := map[string]bool{}
	for _, p := range pins {
		dirs[p.Dir] = true
	}
	names := map[string]bool{}
	for _, tg := range ts {
		if !dirs[tg.Dir] {
			t.Errorf("%s builds in runtime/%s, which no pin checks", tg.Name, tg.Dir)
		}
		if names[tg.Name] {
			t.Errorf("two targets named %s", tg.Name)
		}
		names[tg.Name] = true
		args := strings.Join(buildArgs(tg, "out"), " ")
		if !strings.Contains(args, "-trimpath") || !strings.Contains(args, "-s -w") {
			t.Errorf("%s: %s lacks -trimpath or -s -w", tg.Name, args)
		}
		if static := strings.Contains(args, "-extldflags -static"); static != tg.Cgo {
			t.Errorf("%s: cgo %v but -extldflags -static %v", tg.Name, tg.Cgo, static)
		}
	}
	kube := ts[0]
	for _, want := range []string{"k8s.io/component-base/version.gitVersion=v1.37.2",
		"k8s.io/component-base/version.gitMajor=1", "k8s.io/component-base/version.gitMinor=37",
		"k8s.io/component-base/version.buildDate=2026-10-27T12:01:04Z"} {
		if !slices.Contains(kube.X, want) {
			t.Errorf("kube lacks -X %s", want)
		}
	}
	if !slices.Equal(kube.Links, kubeComponents) {
		t.Errorf("kube links %v", kube.Links)
	}
}

func TestKeyAndUpToDate(t *testing.T) {
	root, out := t.TempDir(), t.TempDir()
	writeGoMod(t, filepath.Join(root, "m"), "")
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, "m", name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.sum", "")
	write("main.go", "package main\n")
	b := &builder{Root: root, Out: out, Versions: []byte("A := 1\n"), Toolchain: "go1"}
	tg := target{Name: "m", Dir: "m", Pkg: "."}
	k0 := mustKey(t, b, tg)
	if k := mustKey(t, b, tg); k != k0 {
		t.Fatal("key is not stable")
	}
	changes := []func(){
		func() { write("main.go", "package main // changed\n") },
		func() { write("go.sum", "x v1 h1:y\n") },
		func() { b.Versions = []byte("A := 2\n") },
		func() { b.Toolchain = "go2" },
		func() { tg.X = []string{"main.v=1"} },
		func() { write("extra.go", "package main\n") },
	}
	seen := map[string]bool{k0: true}
	for i, change := range changes {
		change()
		k := mustKey(t, b, tg)
		if seen[k] {
			t.Fatalf("change %d did not change the key", i)
		}
		seen[k] = true
	}

	key := mustKey(t, b, tg)
	if b.upToDate(tg, key) {
		t.Fatal("up to date before any build")
	}
	for _, d := range []string{b.binDir(), b.stampDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(b.stampDir(), "m.key"), []byte(key+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b.upToDate(tg, key) {
		t.Fatal("up to date without the binary")
	}
	if err := os.WriteFile(filepath.Join(b.binDir(), "m"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if !b.upToDate(tg, key) {
		t.Fatal("not up to date with binary and key")
	}
	if b.upToDate(tg, "other") {
		t.Fatal("up to date with another key")
	}
}

func mustKey(t *testing.T, b *builder, tg target) string {
	t.Helper()
	k, err := b.key(tg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSelectTargets(t *testing.T) {
	all := []target{{Name: "a"}, {Name: "b"}, {Name: "c"}}
	got, err := selectTargets(all, "c,a")
	if err != nil || len(got) != 2 || got[0].Name != "c" || got[1].Name != "a" {
		t.Fatalf("selectTargets = %v, %v", got, err)
	}
	if got, _ := selectTargets(all, ""); len(got) != 3 {
		t.Fatalf("empty selection = %v, want all", got)
	}
	if _, err := selectTargets(all, "a,zz"); err == nil {
		t.Fatal("unknown target accepted")
	}
}

// A real build of a tiny module: the binary, its links, key and time land
// where the stamps say, and a second run builds nothing.
func TestBuildAllTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	root, out := t.TempDir(), t.TempDir()
	writeGoMod(t, filepath.Join(root, "m"), "")
	if err := os.WriteFile(filepath.Join(root, "m", "main.go"),
		[]byte("package main\n\nvar v = \"unset\"\n\nfunc main() { println(v) }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &builder{Root: root, Out: out, Versions: []byte("A := 1\n"), Toolchain: "test", Log: os.Stderr}
	ts := []target{{Name: "tiny", Dir: "m", Pkg: ".", X: []string{"main.v=stamped"}, Links: []string{"tiny-alias"}}}
	ctx := context.Background()
	if err := b.buildAll(ctx, ts); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(filepath.Join(out, "bin", "tiny"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(bin), "stamped") {
		t.Error("binary lacks the -X stamped value")
	}
	if l, err := os.Readlink(filepath.Join(out, "bin", "tiny-alias")); err != nil || l != "tiny" {
		t.Errorf("link tiny-alias -> %q, %v", l, err)
	}
	key := mustKey(t, b, ts[0])
	if !b.upToDate(ts[0], key) {
		t.Fatal("not up to date right after the build")
	}
	if _, err := os.Stat(filepath.Join(out, "stamps", "tiny.seconds")); err != nil {
		t.Errorf("no build time recorded: %v", err)
	}
	ts[0].Pkg = "./missing"
	ts[0].X = nil // a new key, so it builds, and fails
	if err := b.buildAll(ctx, ts); err == nil || !strings.Contains(err.Error(), "build tiny") {
		t.Fatalf("building a missing package: %v", err)
	}
}
