package manifest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const appHeader = `apiVersion: cluster.gravitational.io/v2
kind: Cluster
metadata:
  name: cluster-image
  resourceVersion: 0.0.1
hooks:
  install:
`

const validJob = `apiVersion: batch/v1
kind: Job
metadata:
  name: install
spec:
  template:
    spec:
      restartPolicy: OnFailure
      containers:
        - name: install
          image: quay.io/gravitational/debian-tall:stretch
`

// writeApp lays out an app dir: app.yaml is appHeader plus hooks, then files.
func writeApp(t *testing.T, hooks string, files map[string]string) (dir string, data []byte) {
	t.Helper()
	dir = t.TempDir()
	data = []byte(appHeader + hooks)
	files["app.yaml"] = string(data)
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, data
}

func TestHookErrors(t *testing.T) {
	t.Parallel()
	const fileHook = "    job: file://install.yaml\n" // line 8, value at column 10
	tests := []struct {
		name  string
		hooks string
		files map[string]string
		setup func(t *testing.T, dir string)
		want  []string // "DIR" stands for the app directory
	}{{
		name: "missing file", hooks: fileHook, files: map[string]string{},
		want: []string{`app.yaml:8:10: hooks.install.job: hook file "install.yaml" not found in DIR`},
	}, {
		name: "unreadable (a directory)", hooks: fileHook, files: map[string]string{"install.yaml/x": ""},
		want: []string{`app.yaml:8:10: hooks.install.job: cannot read hook file "install.yaml": is a directory`},
	}, {
		name: "escapes with ..", hooks: "    job: file://../install.yaml\n", files: map[string]string{},
		want: []string{`app.yaml:8:10: hooks.install.job: hook file "../install.yaml" is outside the app directory DIR`},
	}, {
		name: "absolute outside", hooks: "    job: file:///etc/passwd\n", files: map[string]string{},
		want: []string{`app.yaml:8:10: hooks.install.job: hook file "/etc/passwd" is outside the app directory DIR`},
	}, {
		name: "symlink outside", hooks: fileHook, files: map[string]string{},
		setup: func(t *testing.T, dir string) {
			outside := filepath.Join(t.TempDir(), "job.yaml")
			if err := os.WriteFile(outside, []byte(validJob), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(outside, filepath.Join(dir, "install.yaml")); err != nil {
				t.Fatal(err)
			}
		},
		want: []string{`app.yaml:8:10: hooks.install.job: hook file "install.yaml" links outside the app directory (to `},
	}, {
		name: "two documents", hooks: fileHook, files: map[string]string{"install.yaml": validJob + "---\n" + validJob},
		want: []string{`install.yaml:13:1: a hook must be exactly one Job; found a second YAML document`},
	}, {
		name: "other kind", hooks: fileHook,
		files: map[string]string{"install.yaml": strings.Replace(validJob, "kind: Job", "kind: Deployment", 1)},
		want:  []string{`install.yaml:2:7: kind: a hook must be a batch/v1 Job: want "Job", got the string "Deployment"`},
	}, {
		name: "other apiVersion", hooks: fileHook,
		files: map[string]string{"install.yaml": strings.Replace(validJob, "batch/v1", "apps/v1", 1)},
		want:  []string{`install.yaml:1:13: apiVersion: a hook must be a batch/v1 Job: want "batch/v1", got the string "apps/v1"`},
	}, {
		name: "no header", hooks: fileHook, files: map[string]string{"install.yaml": "spec: {}\n"},
		want: []string{
			`install.yaml:1:1: apiVersion: required field is missing (a hook must be a batch/v1 Job)`,
			`install.yaml:1:1: kind: required field is missing (a hook must be a batch/v1 Job)`,
		},
	}, {
		name: "unknown field", hooks: fileHook,
		files: map[string]string{"install.yaml": strings.Replace(validJob, "          image:", "          imagee:", 1)},
		want:  []string{`install.yaml:11:11: spec.template.spec.containers[0].imagee: unknown field "imagee" (did you mean "image"?)`},
	}, {
		name: "wrong type", hooks: fileHook,
		files: map[string]string{"install.yaml": validJob + "  backoffLimit: many\n"},
		want:  []string{`install.yaml:12:17: spec.backoffLimit: wrong type: got the string "many", want an integer`},
	}, {
		name: "wrong type in second container", hooks: fileHook,
		files: map[string]string{"install.yaml": validJob + "        - name: b\n          image: [x]\n"},
		want:  []string{`install.yaml:13:18: spec.template.spec.containers[1].image: wrong type: got a list, want a string`},
	}, {
		name: "duplicate key", hooks: fileHook,
		files: map[string]string{"install.yaml": validJob + "metadata: {}\n"},
		want:  []string{`install.yaml:12:1: metadata: duplicate key "metadata" (first set at line 3)`},
	}, {
		name: "not YAML", hooks: fileHook, files: map[string]string{"install.yaml": "apiVersion: [batch/v1\n"},
		want: []string{`install.yaml:1: invalid YAML: did not find expected ',' or ']'`},
	}, {
		name: "empty file", hooks: fileHook, files: map[string]string{"install.yaml": "# nothing\n"},
		want: []string{`install.yaml: the hook Job is empty`},
	}, {
		name: "not a mapping", hooks: fileHook, files: map[string]string{"install.yaml": "- a\n"},
		want: []string{`install.yaml:1:1: expected a batch/v1 Job, got a list`},
	}, {
		name: "no containers", hooks: fileHook,
		files: map[string]string{"install.yaml": "apiVersion: batch/v1\nkind: Job\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n"},
		want:  []string{`install.yaml:6:7: spec.template.spec.containers: a Job needs at least one container`},
	}, {
		name:  "inline literal unknown field",
		hooks: "    job: |\n" + indent(strings.Replace(validJob, "restartPolicy", "restartPolicyy", 1), "      "),
		files: map[string]string{},
		want:  []string{`app.yaml:16:13: hooks.install.job.spec.template.spec.restartPolicyy: unknown field "restartPolicyy" (did you mean "restartPolicy"?)`},
	}, {
		name: "inline quoted points at the value", hooks: `    job: "apiVersion: batch/v1\nkind: Job\nspec: {x: 1}"` + "\n",
		files: map[string]string{},
		want:  []string{`app.yaml:8:10: hooks.install.job.spec.x: unknown field "x"`},
	}, {
		name: "job as a mapping", hooks: "    job:\n      apiVersion: batch/v1\n", files: map[string]string{},
		want: []string{`app.yaml:9:7: hooks.install.job: expected a string, got a mapping (write the Job as a block string, "job: |", or use file://)`},
	}, {
		name: "remote job", hooks: "    job: https://example.com/job.yaml\n", files: map[string]string{},
		want: []string{`app.yaml:8:10: hooks.install.job: remote hook jobs are not supported (builds are offline): use file:// or an inline Job`},
	}, {
		name: "empty job", hooks: "    job: \"\"\n", files: map[string]string{},
		want: []string{`app.yaml:8:10: hooks.install.job: required field is missing (an inline Job or file://path)`},
	}, {
		name: "hook without job", hooks: "  update:\n", files: map[string]string{},
		want: []string{`app.yaml:7:3: hooks.install: hook has no job`, `app.yaml:8:3: hooks.update: hook has no job`},
	}, {
		name: "errors in two files", hooks: fileHook + "  update:\n    job: file://update.yaml\n  instal: {}\n",
		files: map[string]string{"install.yaml": "kind: Job\n", "update.yaml": "kind: Job\n"},
		want: []string{
			`app.yaml:11:3: hooks.instal: unknown field "instal" (did you mean "install"?)`,
			`install.yaml:1:1: apiVersion: required field is missing (a hook must be a batch/v1 Job)`,
			`update.yaml:1:1: apiVersion: required field is missing (a hook must be a batch/v1 Job)`,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir, data := writeApp(t, tt.hooks, tt.files)
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			app, err := Parse("app.yaml", data, dir)
			if err == nil {
				t.Fatalf("no error; hooks %+v", app.Hooks)
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(tt.want) {
				t.Fatalf("errors:\n got %q\nwant %q", got, tt.want)
			}
			for i, w := range tt.want {
				w = strings.ReplaceAll(w, "DIR", dir)
				if got[i] != w && !(strings.HasSuffix(w, "(to ") && strings.HasPrefix(got[i], w)) {
					t.Errorf("error %d:\n got %q\nwant %q", i, got[i], w)
				}
			}
		})
	}
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}

func TestHookMissingUnwraps(t *testing.T) {
	t.Parallel()
	dir, _ := writeApp(t, "    job: file://install.yaml\n", map[string]string{})
	_, err := Load(filepath.Join(dir, "app.yaml"))
	var e *Error
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &e) || e.Line != 8 || e.Field != "hooks.install.job" {
		t.Errorf("err = %v (%+v), want a located *Error wrapping fs.ErrNotExist", err, e)
	}
}

func TestHookFilePaths(t *testing.T) {
	t.Parallel()
	dir, _ := writeApp(t, "    job: file://hooks/../hooks/install.yaml\n  update:\n    job: file://DIR/hooks/update.yaml\n",
		map[string]string{"hooks/install.yaml": validJob, "hooks/update.yaml": validJob})
	data := []byte(strings.ReplaceAll(appHeader+"    job: file://hooks/../hooks/install.yaml\n  update:\n    job: file://DIR/hooks/update.yaml\n", "DIR", dir))
	if err := os.WriteFile(filepath.Join(dir, "app.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	app, err := Load(filepath.Join(dir, "app.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"hooks/install.yaml", "hooks/update.yaml"} {
		h := app.Hooks[i]
		if h.Source != want || h.File != filepath.Join(dir, want) || h.Inline() {
			t.Errorf("hook %s: Source %q File %q, want %q", h.Hook, h.Source, h.File, want)
		}
	}
	// An error inside a hook file names it relative to how app.yaml was named.
	if err := os.WriteFile(filepath.Join(dir, "hooks/install.yaml"), []byte("kind: Job\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(filepath.Join(dir, "app.yaml"))
	if want := filepath.Join(dir, "hooks/install.yaml") + ":1:1: apiVersion:"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %v, want prefix %q", err, want)
	}
}

func TestParseWithoutDir(t *testing.T) {
	t.Parallel()
	_, err := Parse("app.yaml", []byte(appHeader+"    job: file://install.yaml\n"), "")
	want := `app.yaml:8:10: hooks.install.job: file://install.yaml: no app directory to resolve it against`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
	app, err := Parse("app.yaml", []byte(appHeader+"    job: |\n"+indent(validJob, "      ")), "")
	if err != nil || len(app.Hooks) != 1 || app.Hooks[0].Source != "app.yaml#hooks.install.job" || string(app.Hooks[0].Raw) != validJob {
		t.Errorf("inline hook without dir: %v %+v", err, app)
	}
}
