// Package manifest reads app.yaml, the cluster image manifest
// (cluster.gravitational.io/v2, kinds Cluster and Application), strictly:
// every problem is reported with file, line, column and field path, hook Jobs
// are loaded and decoded as batch/v1 Jobs, and fields that are valid but not
// implemented yet produce warnings instead of being ignored.
package manifest

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DefaultFile is the manifest file name looked up in an app directory.
const DefaultFile = "app.yaml"

// App is a loaded manifest with its hook Jobs.
type App struct {
	Path     string    // absolute path of app.yaml ("" if unknown)
	Dir      string    // absolute app directory; file:// paths are relative to it
	Raw      []byte    // the manifest as written
	Manifest *Manifest // typed manifest
	Hooks    []HookJob // every hook that has a Job, in HookNames order
	Warnings []Warning // valid fields without behaviour yet
}

// Hook returns the Job of the named hook, if the manifest has one.
func (a *App) Hook(name string) (HookJob, bool) {
	for _, h := range a.Hooks {
		if h.Hook == name {
			return h, true
		}
	}
	return HookJob{}, false
}

// Load reads the manifest at path (a file, or a directory holding app.yaml)
// and the hook files it references. Errors name path as given.
func Load(path string) (*App, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, DefaultFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read manifest: %v", rootCause(err)), Err: err}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot resolve path: %v", err), Err: err}
	}
	app, err := Parse(path, data, filepath.Dir(abs))
	if err != nil {
		return nil, err
	}
	app.Path = abs
	return app, nil
}

// Parse decodes manifest data. file is the name used in errors (as the user
// gave it, e.g. "app.yaml"); dir is the app directory that file:// hook paths
// are resolved against and confined to ("" forbids file:// hooks).
// The error is an ErrorList holding every problem found, or an *Error.
func Parse(file string, data []byte, dir string) (*App, error) {
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, &Error{File: file, Msg: fmt.Sprintf("cannot resolve app directory: %v", err), Err: err}
		}
		dir = abs
	}
	root, err := parseRoot(file, data)
	if err != nil {
		return nil, err
	}
	sink := &errorSink{}
	d := newDecoder(file, sink)
	d.lines = strings.Split(string(data), "\n")
	m := &Manifest{}
	d.decode(root, reflect.ValueOf(m).Elem(), "")
	(&validator{decoder: d, root: root}).validate(m)
	var hooks []HookJob
	if m.Hooks != nil {
		hooks = (&hookLoader{decoder: d, dir: dir}).load(m.Hooks)
	}
	if err := sortErrors(file, sink.errs).err(); err != nil {
		return nil, err
	}
	app := &App{Dir: dir, Raw: data, Manifest: m, Hooks: hooks, Warnings: warnings(file, d.keys, d.pos)}
	if dir != "" {
		app.Path = filepath.Join(dir, filepath.Base(file))
	}
	return app, nil
}

// parseRoot returns the top mapping of a single-document manifest.
func parseRoot(file string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: file, Msg: "manifest is empty (want apiVersion, kind and metadata)"}
		}
		return nil, yamlSyntaxError(file, err)
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, &Error{File: file, Msg: "manifest is empty (want apiVersion, kind and metadata)"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: file, Line: root.Line, Column: root.Column,
			Msg: fmt.Sprintf("manifest must be a mapping (apiVersion, kind, metadata...), got %s", describe(root))}
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
		return root, nil
	case err != nil:
		return nil, yamlSyntaxError(file, err)
	case len(next.Content) > 0 && !isNull(next.Content[0]):
		return nil, &Error{File: file, Line: next.Content[0].Line, Column: next.Content[0].Column,
			Msg: "manifest must be a single YAML document; found a second one"}
	}
	return root, nil
}

func yamlSyntaxError(file string, err error) *Error {
	e := &Error{File: file, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: "), Err: err}
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		fmt.Sscan(m[1], &e.Line)
		e.Msg = "invalid YAML: " + m[2]
	}
	return e
}

// sortErrors orders errors by file (the manifest first), line and column.
func sortErrors(file string, errs ErrorList) *errorSink {
	rank := map[string]int{file: 0}
	for _, e := range errs {
		if _, ok := rank[e.File]; !ok {
			rank[e.File] = len(rank)
		}
	}
	slices.SortStableFunc(errs, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(rank[a.File], rank[b.File]), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	return &errorSink{errs: errs}
}

// BaseImage splits baseImage ("gravity:0.1.0") into name and version; ok is
// false when the manifest does not name one. Parse has already rejected
// malformed values.
func (m *Manifest) BaseImage() (name, version string, ok bool) {
	if m.BaseImageRef == "" {
		return "", "", false
	}
	name, version, err := splitBaseImage(m.BaseImageRef)
	if err != nil {
		return "", "", false
	}
	return name, version, true
}

// Repository returns metadata.repository, or DefaultRepository when unset.
func (m *Manifest) Repository() string {
	return cmp.Or(m.Metadata.Repository, DefaultRepository)
}

// Locator returns "<repository>/<name>:<resourceVersion>",
// e.g. "gravitational.io/cluster-image:0.0.1".
func (m *Manifest) Locator() string {
	return fmt.Sprintf("%s/%s:%s", m.Repository(), m.Metadata.Name, m.Metadata.ResourceVersion)
}
