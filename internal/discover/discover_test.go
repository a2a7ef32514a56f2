package discover

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"
)

// writeTree creates files (slash paths → content) under a fresh directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func loadJob(t *testing.T, path string) *batchv1.Job {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var job batchv1.Job
	if err := yaml.UnmarshalStrict(data, &job); err != nil {
		t.Fatal(err)
	}
	return &job
}

func discover(t *testing.T, o Options) *Result {
	t.Helper()
	res, err := Discover(context.Background(), o)
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	return res
}

// images maps each Ref to its Users, for compact comparisons.
func images(res *Result) map[string][]string {
	m := map[string][]string{}
	for _, img := range res.Images {
		m[img.Ref] = img.Users
	}
	return m
}

func TestDiscoverSeed(t *testing.T) {
	dir, err := filepath.Abs("testdata/v1")
	if err != nil {
		t.Fatal(err)
	}
	res := discover(t, Options{
		Dir:      dir,
		Manifest: filepath.Join(dir, "app.yaml"),
		Hooks: []Hook{{Name: "install", Source: "install.yaml", File: "install.yaml",
			Job: loadJob(t, filepath.Join(dir, "install.yaml"))}},
	})
	want := &Result{
		Images: []Image{
			{Ref: "alpine:3.3", Users: []string{"charts/alpine: Pod/alpine (container alpine)"}},
			{Ref: "quay.io/gravitational/debian-tall:stretch", Users: []string{"install.yaml: Job/install (container install)"}},
		},
		Charts: []string{"charts/alpine"},
	}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("got %+v\nwant %+v", res, want)
	}
}

// Without the manifest's hooks, install.yaml is an ordinary resource file.
func TestDiscoverHookFileAsResource(t *testing.T) {
	dir, _ := filepath.Abs("testdata/v1")
	res := discover(t, Options{Dir: dir, Manifest: filepath.Join(dir, "app.yaml")})
	got := images(res)["quay.io/gravitational/debian-tall:stretch"]
	want := []string{"install.yaml: Job/default/install (container install)"}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(res.Files, []string{"install.yaml"}) {
		t.Errorf("users %v files %v, want %v [install.yaml]", got, res.Files, want)
	}
}

// podSpec is a PodSpec with every container list, under "spec:" at depth.
func podSpec(depth int) string {
	const spec = `spec:
  initContainers:
  - name: init
    image: init:1
  containers:
  - name: main
    image: main:1
  ephemeralContainers:
  - name: debug
    image: debug:1
`
	pad := strings.Repeat("  ", depth)
	return pad + strings.ReplaceAll(strings.TrimSuffix(spec, "\n"), "\n", "\n"+pad) + "\n"
}

func TestDiscoverKinds(t *testing.T) {
	templated := "spec:\n  template:\n" + podSpec(2)
	cases := []struct{ kind, doc, id string }{
		{"Pod", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ns}\n" + podSpec(0), "Pod/ns/p"},
		{"Deployment", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n" + templated, "Deployment/d"},
		{"StatefulSet", "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\n" + templated, "StatefulSet/s"},
		{"DaemonSet", "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: ds}\n" + templated, "DaemonSet/ds"},
		{"ReplicaSet", "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: rs}\n" + templated, "ReplicaSet/rs"},
		{"ReplicationController", "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: rc}\n" + templated, "ReplicationController/rc"},
		{"Job", "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\n" + templated, "Job/j"},
		{"CronJob", "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: cj}\nspec:\n  jobTemplate:\n    spec:\n      template:\n" + podSpec(4), "CronJob/cj"},
		{"PodTemplate", "apiVersion: v1\nkind: PodTemplate\nmetadata: {name: pt}\ntemplate:\n" + podSpec(1), "PodTemplate/pt"},
		{"odd apiVersion", "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: old}\n" + templated, "Deployment/old"},
		{"CRD reusing a kind", "apiVersion: example.com/v1\nkind: Pod\nmetadata: {name: crd}\n" + podSpec(0), "Pod/crd"},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			dir := writeTree(t, map[string]string{"r.yaml": c.doc})
			got := images(discover(t, Options{Dir: dir}))
			want := map[string][]string{
				"init:1":  {"r.yaml: " + c.id + " (initContainer init)"},
				"main:1":  {"r.yaml: " + c.id + " (container main)"},
				"debug:1": {"r.yaml: " + c.id + " (ephemeralContainer debug)"},
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %v\nwant %v\ndoc:\n%s", got, want, c.doc)
			}
		})
	}
}

// alpineChart is the workshop chart: no apiVersion, and a float version
// value that must render as "3.3".
var alpineChart = map[string]string{
	"charts/alpine/Chart.yaml":         "name: alpine\ndescription: Deploy a basic Alpine 3.3 Linux pod\nversion: 0.0.1\n",
	"charts/alpine/values.yaml":        "version: 3.3\nregistry:\n",
	"charts/alpine/templates/pod.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: alpine\nspec:\n  containers:\n  - name: alpine\n    image: \"{{ .Values.registry }}alpine:{{ .Values.version }}\"\n",
}

func withFiles(base map[string]string, extra map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestDiscoverChartValues(t *testing.T) {
	cases := []struct {
		name   string
		set    []string
		values map[string]string // values files to write and pass
		want   string
	}{
		{"defaults", nil, nil, "alpine:3.3"},
		{"set", []string{"version=3.4"}, nil, "alpine:3.4"},
		{"values file", nil, map[string]string{"v.yaml": "version: \"3.5\"\nregistry: quay.io/\n"}, "quay.io/alpine:3.5"},
		{"set wins over values", []string{"version=3.6"}, map[string]string{"v.yaml": "version: 3.5\n"}, "alpine:3.6"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeTree(t, alpineChart)
			vdir := writeTree(t, c.values)
			var files []string
			for name := range c.values {
				files = append(files, filepath.Join(vdir, name))
			}
			res := discover(t, Options{Dir: dir, Set: c.set, Values: files})
			want := map[string][]string{c.want: {"charts/alpine: Pod/alpine (container alpine)"}}
			if got := images(res); !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestDiscoverSubchart(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"app/Chart.yaml":                  "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n- name: db\n  version: 0.1.0\n  condition: db.enabled\n",
		"app/values.yaml":                 "db:\n  enabled: true\n  tag: \"16\"\n",
		"app/templates/web.yaml":          "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n",
		"app/templates/test.yaml":         "apiVersion: v1\nkind: Pod\nmetadata:\n  name: smoke\n  annotations:\n    helm.sh/hook: test\nspec:\n  containers:\n  - name: t\n    image: busybox:1\n",
		"app/charts/db/Chart.yaml":        "apiVersion: v2\nname: db\nversion: 0.1.0\n",
		"app/charts/db/values.yaml":       "tag: \"15\"\n",
		"app/charts/db/templates/db.yaml": "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\nspec:\n  template:\n    spec:\n      containers:\n      - name: pg\n        image: postgres:{{ .Values.tag }}\n",
	})
	res := discover(t, Options{Dir: dir})
	want := map[string][]string{
		"nginx:1.27":  {"app: Deployment/release-name-web (container web)"},
		"busybox:1":   {"app: Pod/smoke (container t)"},
		"postgres:16": {"app: StatefulSet/db (container pg)"},
	}
	if got := images(res); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if !reflect.DeepEqual(res.Charts, []string{"app"}) || len(res.Files) != 0 || len(res.Skipped) != 0 {
		t.Errorf("charts %v files %v skipped %v", res.Charts, res.Files, res.Skipped)
	}
	// The condition turns the subchart off: its image is not needed.
	res = discover(t, Options{Dir: dir, Set: []string{"db.enabled=false"}})
	if _, ok := images(res)["postgres:16"]; ok {
		t.Errorf("disabled subchart still discovered: %v", images(res))
	}
}

func TestDiscoverErrors(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		set   []string
		want  []string // substrings of the error
	}{
		{"broken template", withFiles(alpineChart, map[string]string{
			"charts/alpine/templates/bad.yaml": "kind: Pod\nimage: {{ .Values.version | nosuchfunc }}\n"}),
			nil, []string{"charts/alpine", `function "nosuchfunc" not defined`}},
		{"template fails", withFiles(alpineChart, map[string]string{
			"charts/alpine/templates/bad.yaml": "{{ required \"registry is required\" .Values.registry }}\n"}),
			nil, []string{"render chart charts/alpine", "registry is required"}},
		{"missing dependency", map[string]string{
			"c/Chart.yaml": "apiVersion: v2\nname: c\nversion: 1.0.0\ndependencies:\n- name: gone\n  version: 1.0.0\n"},
			nil, []string{"render chart c", "missing in charts/ directory: gone"}},
		{"bad Chart.yaml", map[string]string{"c/Chart.yaml": "name: [\n"},
			nil, []string{"render chart c"}},
		{"bad --set", alpineChart, []string{"version"}, []string{"read chart values", "key \"version\" has no value"}},
		{"invalid YAML", map[string]string{"deploy/bad.yaml": "kind: Pod\nmetadata:\n  name: x\n bad: [\n"},
			nil, []string{"deploy/bad.yaml:4:"}},
		{"invalid YAML in a later document", map[string]string{"multi.yaml": "kind: Pod\n---\nkind: Pod\nspec: {containers: [}\n"},
			nil, []string{"multi.yaml:4:"}},
		{"invalid image", map[string]string{"web.yaml": "kind: Deployment\nmetadata: {name: web, namespace: prod}\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: Nginx:1\n"},
			nil, []string{"web.yaml:8:", "Deployment/prod/web (container web)", `"Nginx:1"`}},
		{"image not a string", map[string]string{"p.yaml": "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: [a]\n"},
			nil, []string{"p.yaml:6:", "Pod/p (container c): image is not a string"}},
		{"duplicate image key", map[string]string{"p.yaml": "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: a\n    image: b\n"},
			nil, []string{"p.yaml:7:", `duplicate key "image"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeTree(t, c.files)
			_, err := Discover(context.Background(), Options{Dir: dir, Set: c.set})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestDiscoverPlainFiles(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"app.yaml":          "apiVersion: cluster.gravitational.io/v2\nkind: Cluster\nmetadata: {name: c, resourceVersion: 0.0.1}\n",
		"list.yml":          "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a}\n  spec: {containers: [{name: a, image: 'a:1'}]}\n- kind: ConfigMap\n  metadata: {name: cm}\n- {}\n- foo: bar\n",
		"images.yaml":       "apiVersion: cluster.gravitational.io/v1beta1\nkind: ImageSet\nmetadata: {name: extra}\nspec:\n  images:\n  - image: quay.io/x/operand:2\n  - image: a:1\n",
		"empty.yaml":        "# nothing here\n---\n---\n{}\n",
		"values/prod.yaml":  "replicas: 3\n",
		"notes.txt":         "kind: Pod\nimage: [\n",
		"tpl.yaml":          "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: t}\nspec:\n  template:\n    spec:\n      containers:\n      - name: t\n",
		".git/x.yaml":       "bad: [\n",
		"big/pack.tar.yaml": "bad: [\n",
	})
	res := discover(t, Options{Dir: dir, Manifest: filepath.Join(dir, "app.yaml"), Ignore: []string{".git", "*.tar.yaml"}})
	want := &Result{
		Images: []Image{
			{Ref: "a:1", Users: []string{"images.yaml: ImageSet/extra (images[1])", "list.yml: Pod/a (container a)"}},
			{Ref: "quay.io/x/operand:2", Users: []string{"images.yaml: ImageSet/extra (images[0])"}},
		},
		Files: []string{"empty.yaml", "images.yaml", "list.yml", "tpl.yaml", "values/prod.yaml"},
		Skipped: []string{
			"list.yml: List item at line 11 has no kind, skipped",
			"tpl.yaml: Deployment/t (container t): no image",
			"values/prod.yaml: document 1 (line 1) has no kind, skipped",
		},
	}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("got  %+v\nwant %+v", res, want)
	}
}

func TestDiscoverBadIgnorePattern(t *testing.T) {
	_, err := Discover(context.Background(), Options{Dir: t.TempDir(), Ignore: []string{"["}})
	if err == nil || !strings.Contains(err.Error(), `ignore pattern "["`) {
		t.Errorf("err = %v", err)
	}
}

func TestDiscoverCanceled(t *testing.T) {
	dir := writeTree(t, map[string]string{"a.yaml": "kind: Pod\n"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Discover(ctx, Options{Dir: dir}); err == nil {
		t.Error("canceled context: no error")
	}
}

func TestSyntaxErrorLines(t *testing.T) {
	cases := []struct {
		data string
		line int
	}{
		{"a: [\n", 2},                      // parser error at end of stream
		{"- a\nb: c\n", 2},                 // parser: block sequence then key
		{"a: b\n c: d\n", 2},               // scanner: mapping values not allowed
		{"a: b\n\tc: d\n", 2},              // scanner: tab
		{"x: 1\n---\ny: {a: b\nz: 2\n", 3}, // unclosed flow mapping opened on line 3
		{"]\n", 1},
	}
	for _, c := range cases {
		_, err := scanStream([]byte(c.data))
		pe, ok := err.(*posError)
		if !ok || pe.Line != c.line {
			t.Errorf("%q: err %v, want line %d", c.data, err, c.line)
		}
	}
}

func TestDiscoverDirIsChart(t *testing.T) {
	files := map[string]string{}
	for name, content := range alpineChart {
		files[strings.TrimPrefix(name, "charts/alpine/")] = content
	}
	dir := writeTree(t, files)
	res := discover(t, Options{Dir: dir})
	want := map[string][]string{"alpine:3.3": {filepath.Base(dir) + ": Pod/alpine (container alpine)"}}
	if got := images(res); !reflect.DeepEqual(got, want) || !reflect.DeepEqual(res.Charts, []string{"."}) {
		t.Errorf("got %v charts %v, want %v [.]", got, res.Charts, want)
	}
}

func TestDiscoverInlineHook(t *testing.T) {
	job := loadJob(t, "testdata/v1/install.yaml")
	job.Spec.Template.Spec.InitContainers = append(job.Spec.Template.Spec.InitContainers, job.Spec.Template.Spec.Containers[0])
	job.Spec.Template.Spec.InitContainers[0].Name = "wait"
	job.Spec.Template.Spec.InitContainers[0].Image = "busybox:1"
	res := discover(t, Options{Dir: t.TempDir(), Hooks: []Hook{{Name: "update", Source: "app.yaml#hooks.update.job", Job: job}}})
	want := map[string][]string{
		"busybox:1": {"app.yaml#hooks.update.job: Job/install (initContainer wait)"},
		"quay.io/gravitational/debian-tall:stretch": {"app.yaml#hooks.update.job: Job/install (container install)"},
	}
	if got := images(res); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	job.Spec.Template.Spec.Containers[0].Image = "Bad Ref"
	_, err := Discover(context.Background(), Options{Dir: t.TempDir(), Hooks: []Hook{{Name: "update", Source: "app.yaml#hooks.update.job", Job: job}}})
	if err == nil || !strings.Contains(err.Error(), "hook update (app.yaml#hooks.update.job)") || !strings.Contains(err.Error(), "Job/install (container install)") {
		t.Errorf("err = %v", err)
	}
	if _, err := Discover(context.Background(), Options{Dir: t.TempDir(), Hooks: []Hook{{Name: "install"}}}); err == nil {
		t.Error("hook without job: no error")
	}
}
