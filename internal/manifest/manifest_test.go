package manifest

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestLoadValid(t *testing.T) {
	t.Parallel()
	type hook struct{ name, source, job string }
	tests := []struct {
		dir      string
		locator  string
		base     string // "" when no baseImage
		hooks    []hook
		warnings int
	}{
		{dir: "v1-simplest", locator: "gravitational.io/cluster-image:0.0.1"},
		{dir: "v1-with-base", locator: "gravitational.io/cluster-image:0.0.1", base: "gravity:0.1.0"},
		{dir: "v1-with-resources", locator: "gravitational.io/cluster-image:0.0.1", base: "gravity:0.1.0"},
		{dir: "v1", locator: "gravitational.io/cluster-image:0.0.1", base: "gravity:0.1.0",
			hooks: []hook{{"install", "install.yaml", "install"}}},
		{dir: "v2", locator: "gravitational.io/cluster-image:0.0.2", base: "gravity:0.1.0",
			hooks: []hook{{"install", "install.yaml", "install"}, {"update", "upgrade.yaml", "upgrade"}}},
		{dir: "full", locator: "example.com/full-image:1.2.3-rc.1+build.5", base: "gravity:0.1.0", warnings: 34},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			t.Parallel()
			app, err := Load(filepath.Join("testdata", "valid", tt.dir, "app.yaml"))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := app.Manifest.Locator(); got != tt.locator {
				t.Errorf("Locator() = %q, want %q", got, tt.locator)
			}
			name, version, ok := app.Manifest.BaseImage()
			if got := name + ":" + version; ok != (tt.base != "") || (ok && got != tt.base) {
				t.Errorf("BaseImage() = %q, %v; want %q", got, ok, tt.base)
			}
			if len(app.Warnings) != tt.warnings {
				t.Errorf("got %d warnings, want %d: %v", len(app.Warnings), tt.warnings, app.Warnings)
			}
			wantDir, _ := filepath.Abs(filepath.Join("testdata", "valid", tt.dir))
			if app.Dir != wantDir || app.Path != filepath.Join(wantDir, "app.yaml") {
				t.Errorf("Dir, Path = %q, %q; want %q and app.yaml in it", app.Dir, app.Path, wantDir)
			}
			if tt.dir == "full" {
				return // hooks checked in TestFullManifest
			}
			if len(app.Hooks) != len(tt.hooks) {
				t.Fatalf("got %d hooks, want %d", len(app.Hooks), len(tt.hooks))
			}
			for i, h := range app.Hooks {
				want := tt.hooks[i]
				if h.Hook != want.name || h.Source != want.source || h.Job.Name != want.job ||
					h.File != filepath.Join(wantDir, want.source) {
					t.Errorf("hook %d = %s %s %s %s, want %v", i, h.Hook, h.Source, h.File, h.Job.Name, want)
				}
				raw, _ := os.ReadFile(h.File)
				if !bytes.Equal(raw, h.Raw) {
					t.Errorf("hook %s: Raw differs from the file", h.Hook)
				}
			}
		})
	}
}

// TestDecodeMatchesYAMLv3 cross-checks the reflection decoder: on valid input it
// must build exactly what yaml.v3's own strict decoder builds from the same tags.
func TestDecodeMatchesYAMLv3(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/valid/*/app.yaml")
	if err != nil || len(files) < 6 {
		t.Fatalf("glob: %v %v", files, err)
	}
	for _, f := range files {
		app, err := Load(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(app.Raw))
		dec.KnownFields(true)
		var want Manifest
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("%s: yaml.v3: %v", f, err)
		}
		if !reflect.DeepEqual(app.Manifest, &want) {
			t.Errorf("%s: decoded manifest differs from yaml.v3:\n got %+v\nwant %+v", f, app.Manifest, &want)
		}
	}
}

func TestFullManifest(t *testing.T) {
	t.Parallel()
	app, err := Load("testdata/valid/full")
	if err != nil {
		t.Fatal(err)
	}
	m := app.Manifest
	if len(app.Hooks) != len(HookNames()) || len(HookNames()) != 28 {
		t.Fatalf("got %d hooks of %d names, want 28", len(app.Hooks), len(HookNames()))
	}
	for i, h := range app.Hooks {
		if h.Hook != HookNames()[i] || h.Job == nil || len(h.Raw) == 0 {
			t.Errorf("hook %d = %q (job %v), want %q", i, h.Hook, h.Job != nil, HookNames()[i])
		}
	}
	update, ok := app.Hook("update")
	if !ok || !update.Inline() || update.Source != "app.yaml#hooks.update.job" || update.Job.Name != "update" {
		t.Errorf("update hook = %+v", update)
	}
	if q := update.Job.Spec.Template.Spec.Containers[0].Resources.Limits.Memory().String(); q != "128Mi" {
		t.Errorf("inline job memory limit = %s", q)
	}
	vol := m.NodeProfiles[0].Requirements.Volumes[0]
	if n, _ := vol.Capacity.Bytes(); n != 10<<30 || *vol.UID != 1000 || vol.SELinuxLabel == "" || !*vol.CreateIfMissing {
		t.Errorf("volume = %+v", vol)
	}
	if r, _ := m.NodeProfiles[0].Requirements.Network.MinTransferRate.BytesPerSecond(); r != 50<<20 {
		t.Errorf("minTransferRate = %d", r)
	}
	if m.Metadata.CreatedTimestamp == nil || m.Metadata.CreatedTimestamp.Year() != 2020 {
		t.Errorf("createdTimestamp = %v", m.Metadata.CreatedTimestamp)
	}
	if m.Metadata.Labels["app.kubernetes.io/name"] != "full" || m.Extensions.OpsCenter == nil || !m.SystemOptions.AllowPrivileged {
		t.Errorf("manifest = %+v", m)
	}
}

func TestWarnings(t *testing.T) {
	t.Parallel()
	app, err := Load("testdata/valid/full/app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, w := range app.Warnings {
		got[w.Field] = w.String()
	}
	want := map[string]string{
		"metadata.author":      "testdata/valid/full/app.yaml:12:3: metadata.author: " + notImplementedMsg,
		"nodeProfiles":         "testdata/valid/full/app.yaml:58:1: nodeProfiles: " + notImplementedMsg,
		"hooks.postInstall":    "testdata/valid/full/app.yaml:157:3: hooks.postInstall: " + notImplementedMsg,
		"hooks.networkInstall": "testdata/valid/full/app.yaml:193:3: hooks.networkInstall: " + notImplementedMsg,
		"webConfig":            "testdata/valid/full/app.yaml:231:1: webConfig: " + notImplementedMsg,
	}
	for field, w := range want {
		if got[field] != w {
			t.Errorf("warning for %s = %q, want %q", field, got[field], w)
		}
	}
	for _, never := range []string{"metadata.name", "metadata.description", "baseImage", "hooks.install", "hooks.update",
		"hooks.install.job", "nodeProfiles[0].name", "nodeProfiles.name"} {
		if _, ok := got[never]; ok {
			t.Errorf("unexpected warning for %s", never)
		}
	}
	for _, simple := range []string{"v1-simplest", "v2"} {
		app, err := Load(filepath.Join("testdata/valid", simple))
		if err != nil || len(app.Warnings) != 0 {
			t.Errorf("%s: warnings %v, err %v; want none", simple, app.Warnings, err)
		}
	}
}

func TestShouldWarn(t *testing.T) {
	t.Parallel()
	implemented, covered := implementedSets()
	tests := []struct {
		path string
		want bool
	}{
		{"apiVersion", false},
		{"metadata", false},
		{"metadata.name", false},
		{"metadata.labels", true},
		{"hooks", false},
		{"hooks.install", false},
		{"hooks.install.job", false},
		{"hooks.postInstall", true},
		{"hooks.postInstall.job", false}, // its parent is already warned about
		{"nodeProfiles", true},
		{"nodeProfiles.requirements.cpu", false},
	}
	for _, tt := range tests {
		if got := shouldWarn(tt.path, implemented, covered); got != tt.want {
			t.Errorf("shouldWarn(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// TestInvalid loads each testdata/invalid file and expects exactly these errors.
func TestInvalid(t *testing.T) {
	t.Parallel()
	tests := map[string][]string{
		"unknown-field": {`unknown-field.yaml:8:3: hooks.instal: unknown field "instal" (did you mean "install"?)`},
		"misspelt-metadata": {
			`misspelt-metadata.yaml:4:3: metadata.nmae: unknown field "nmae" (did you mean "name"?)`,
			`misspelt-metadata.yaml:4:3: metadata.name: required field is missing`,
		},
		"wrong-type": {
			`wrong-type.yaml:6:11: metadata.hidden: expected true or false, got the string "yes"`,
			`wrong-type.yaml:7:11: metadata.labels: expected a mapping, got a list`,
			`wrong-type.yaml:9:3: nodeProfiles: expected a list, got a mapping`,
		},
		"number-version": {`number-version.yaml:5:20: metadata.resourceVersion: expected a string, got the number 1.0 (quote it: "1.0")`},
		"bad-semver":     {`bad-semver.yaml:5:20: metadata.resourceVersion: "v1.0" is not a valid semantic version (want MAJOR.MINOR.PATCH, e.g. 1.2.3 or 1.2.3-rc.1)`},
		"bad-header": {
			`bad-header.yaml:1:13: apiVersion: unsupported apiVersion "cluster.gravitational.io/v1" (want "cluster.gravitational.io/v2")`,
			`bad-header.yaml:2:7: kind: unsupported kind "Clustr" (want "Cluster" or "Application") (did you mean "Cluster"?)`,
		},
		"missing-metadata": {
			`missing-metadata.yaml:4:3: metadata.name: required field is missing`,
			`missing-metadata.yaml:4:3: metadata.resourceVersion: required field is missing`,
		},
		"duplicate-profile": {`duplicate-profile.yaml:9:11: nodeProfiles[2].name: duplicate node profile "node" (also nodeProfiles[0])`},
		"flavor-unknown-profile": {
			`flavor-unknown-profile.yaml:8:14: installer.flavors.default: no flavor named "large"`,
			`flavor-unknown-profile.yaml:12:22: installer.flavors.items[0].nodes[0].profile: unknown node profile "nodes" (did you mean "node"?)`,
		},
		"duplicate-key":  {`duplicate-key.yaml:6:3: metadata.name: duplicate key "name" (first set at line 4)`},
		"bad-base-image": {`bad-base-image.yaml:3:12: baseImage: invalid base image "gravity:latest": "latest" is not a valid semantic version (want MAJOR.MINOR.PATCH, e.g. 1.2.3 or 1.2.3-rc.1)`},
		"bad-requirements": {
			`bad-requirements.yaml:8:18: nodeProfiles[0].serviceRole: invalid serviceRole "worker" (want master or node)`,
			`bad-requirements.yaml:11:17: nodeProfiles[0].taints[0].effect: invalid taint effect "Never" (want NoSchedule, PreferNoSchedule or NoExecute)`,
			`bad-requirements.yaml:13:26: nodeProfiles[0].requirements.cpu.max: max is less than min`,
			`bad-requirements.yaml:14:18: nodeProfiles[0].requirements.ram.min: invalid size "lots" (want a number and a unit, e.g. "2GB" or "512MiB")`,
			`bad-requirements.yaml:16:26: nodeProfiles[0].requirements.network.minTransferRate: invalid transfer rate "50MB": want a size per second, e.g. "50MB/s"`,
			`bad-requirements.yaml:18:23: nodeProfiles[0].requirements.network.ports[0].protocol: invalid protocol "sctp" (want tcp or udp)`,
			`bad-requirements.yaml:19:22: nodeProfiles[0].requirements.network.ports[0].ranges[0]: invalid port range "70000": ports are 1-65535, low to high`,
			`bad-requirements.yaml:21:17: nodeProfiles[0].requirements.volumes[0].path: path "var/lib/gravity" must be absolute`,
			`bad-requirements.yaml:22:17: nodeProfiles[0].requirements.volumes[0].mode: invalid mode "999" (want octal, e.g. "0755")`,
			`bad-requirements.yaml:25:24: nodeProfiles[0].requirements.devices[0].permissions: invalid permissions "rwx" (want a combination of r, w and m, e.g. "rwm")`,
		},
		"merge-key":     {`merge-key.yaml:7:3: extensions: YAML merge keys (<<) are not supported; write the fields out`},
		"not-mapping":   {`not-mapping.yaml:1:1: manifest must be a mapping (apiVersion, kind, metadata...), got a list`},
		"not-yaml":      {`not-yaml.yaml:3: invalid YAML: did not find expected ',' or ']'`},
		"two-documents": {`two-documents.yaml:7:1: manifest must be a single YAML document; found a second one`},
		"comment-only":  {`comment-only.yaml: manifest is empty (want apiVersion, kind and metadata)`},
		"empty":         {`empty.yaml: manifest is empty (want apiVersion, kind and metadata)`},
	}
	files, _ := filepath.Glob("testdata/invalid/*.yaml")
	if len(files) != len(tests) {
		t.Errorf("%d files in testdata/invalid, %d cases", len(files), len(tests))
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(filepath.Join("testdata", "invalid", name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			app, err := Parse(name+".yaml", data, "testdata/invalid")
			assertErrors(t, app, err, want)
		})
	}
}

// assertErrors checks err lists exactly want, each as an *Error with a position.
func assertErrors(t *testing.T, app *App, err error, want []string) {
	t.Helper()
	if err == nil || app != nil {
		t.Fatalf("got app %v, err nil; want errors %q", app != nil, want)
	}
	got := strings.Split(err.Error(), "\n")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n got %q\nwant %q", got, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.File == "" || (e.Line == 0 && len(want) > 0 && strings.Count(want[0], ":") > 2) {
		t.Errorf("errors.As(*Error) = %+v", e)
	}
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "app.yaml", Line: 7, Column: 3, Field: "hooks.instal", Msg: "bad"}, "app.yaml:7:3: hooks.instal: bad"},
		{Error{File: "app.yaml", Line: 7, Msg: "bad"}, "app.yaml:7: bad"},
		{Error{File: "app.yaml", Msg: "bad"}, "app.yaml: bad"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestLoadMissing(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "app.yaml")
	_, err := Load(path)
	if !errors.Is(err, fs.ErrNotExist) || err.Error() != path+": cannot read manifest: no such file or directory" {
		t.Errorf("Load(missing) = %v", err)
	}
	// A directory without app.yaml names the file it looked for.
	_, err = Load(filepath.Dir(path))
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), path+":") {
		t.Errorf("Load(dir) = %v", err)
	}
}

func TestBaseImageAndLocator(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ref, name, version string
		ok                 bool
	}{
		{"gravity:0.1.0", "gravity", "0.1.0", true},
		{"gravity:7.0.30", "gravity", "7.0.30", true},
		{"", "", "", false},
		{"gravity", "", "", false},
		{"gravity:1.0", "", "", false},
		{"gravitational.io/gravity:1.0.0", "", "", false},
	}
	for _, tt := range tests {
		m := &Manifest{BaseImageRef: tt.ref}
		name, version, ok := m.BaseImage()
		if name != tt.name || version != tt.version || ok != tt.ok {
			t.Errorf("BaseImage(%q) = %q %q %v", tt.ref, name, version, ok)
		}
	}
	m := &Manifest{Metadata: Metadata{Name: "a", ResourceVersion: "1.0.0", Repository: "r.io"}}
	if got := m.Locator(); got != "r.io/a:1.0.0" {
		t.Errorf("Locator() = %q", got)
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	names := HookNames()
	tests := map[string]string{
		"instal":                 ` (did you mean "install"?)`,
		"Install":                ` (did you mean "install"?)`,
		"postinstal":             ` (did you mean "postInstall"?)`,
		"udpate":                 ` (did you mean "update"?)`,
		"completely":             ``,
		"":                       ``,
		strings.Repeat("x", 100): ``,
	}
	for in, want := range tests {
		if got := suggest(in, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}
