package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzDir is an app dir with a valid hook file, so file:// paths in fuzzed
// manifests reach the Job parser.
func fuzzDir(f *testing.F) string {
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "install.yaml"), []byte(validJob), 0o644); err != nil {
		f.Fatal(err)
	}
	return dir
}

func addSeeds(f *testing.F, glob string) {
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds for %s: %v", glob, err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// checkResult holds for any input: success gives a usable App, failure gives
// located errors naming a file.
func checkResult(t *testing.T, app *App, err error) {
	if err != nil {
		if app != nil {
			t.Fatalf("app and error both returned: %v", err)
		}
		var e *Error
		if !errors.As(err, &e) || e.File == "" || e.Msg == "" {
			t.Fatalf("error without *Error, file or message: %#v", err)
		}
		return
	}
	m := app.Manifest
	if m == nil || m.APIVersion != APIVersion || m.Metadata.Name == "" {
		t.Fatalf("accepted an incomplete manifest: %+v", m)
	}
	if _, _, ok := m.BaseImage(); ok != (m.BaseImageRef != "") {
		t.Fatalf("accepted a bad baseImage %q", m.BaseImageRef)
	}
	if checkSemver(m.Metadata.ResourceVersion) != nil || strings.Count(m.Locator(), ":") != 1 {
		t.Fatalf("accepted a bad locator %q", m.Locator())
	}
	for _, h := range app.Hooks {
		if h.Job == nil || h.Job.Kind != "Job" || h.Job.APIVersion != "batch/v1" {
			t.Fatalf("hook %s without a batch/v1 Job", h.Hook)
		}
	}
}

func FuzzParse(f *testing.F) {
	addSeeds(f, "testdata/valid/*/app.yaml")
	addSeeds(f, "testdata/invalid/*.yaml")
	f.Add([]byte(appHeader + "    job: |\n" + indent(validJob, "      ")))
	f.Add([]byte(appHeader + "    job: file://install.yaml\n  update:\n    job: file://../x\n"))
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add([]byte("apiVersion: &v cluster.gravitational.io/v2\nkind: Cluster\nmetadata: {name: *v, resourceVersion: 1.0.0}\n"))
	f.Add([]byte("metadata: {labels: {? [a]: b}}\n"))
	dir := fuzzDir(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		app, err := Parse("app.yaml", data, dir)
		checkResult(t, app, err)
	})
}

// FuzzJob feeds the hook Job parser directly.
func FuzzJob(f *testing.F) {
	addSeeds(f, "testdata/valid/*/install.yaml")
	addSeeds(f, "testdata/valid/full/hooks/*.yaml")
	f.Add([]byte(validJob + "---\n" + validJob))
	f.Add([]byte("apiVersion: batch/v1\nkind: Job\nspec: {template: {spec: {containers: [{name: a, image: [1]}]}}}\n"))
	f.Add([]byte("apiVersion: batch/v1\nkind: Job\nmetadata: {labels: {a: 1}, annotations: {b: [c]}}\n"))
	f.Add([]byte("apiVersion: batch/v1\nkind: Job\nspec: {template: {spec: {containers: [{resources: {limits: {cpu: x}}}]}}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sink := &errorSink{}
		jp := &jobParser{decoder: newDecoder("app.yaml", sink), display: "install.yaml", mapPos: identity}
		job, ok := jp.parse(data)
		if ok != (len(sink.errs) == 0) || ok != (job != nil) {
			t.Fatalf("parse ok=%v with errors %v", ok, sink.errs)
		}
		for _, e := range sink.errs {
			if e.File != "install.yaml" || e.Msg == "" {
				t.Fatalf("bad error %#v", e)
			}
		}
		if ok && (job.Kind != "Job" || job.APIVersion != "batch/v1" || len(job.Spec.Template.Spec.Containers) == 0) {
			t.Fatalf("accepted %+v", job)
		}
	})
}
