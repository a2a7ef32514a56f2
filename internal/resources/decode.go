package resources

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Error is a problem at a place in a file.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// maxNodes bounds the nodes one file may expand to (alias bombs).
const maxNodes = 1 << 16

// MaxFileSize bounds a resource file: resources are small.
const MaxFileSize = 4 << 20

// Decode reads every resource of a file (multi-document YAML; JSON is
// YAML too). All problems of the file are reported together.
func Decode(file string, data []byte) ([]Resource, error) {
	if len(data) > MaxFileSize {
		return nil, &Error{File: file, Msg: fmt.Sprintf("file is larger than %d bytes", MaxFileSize)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []Resource
	var errs []error
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, &Error{File: file, Line: yamlLine(err), Msg: strings.TrimPrefix(err.Error(), "yaml: ")})
			break // the parser cannot go on after a syntax error
		}
		d := docDecoder{file: file, budget: maxNodes}
		r, ok := d.resource(&doc)
		errs = append(errs, d.errs...)
		if ok {
			out = append(out, r)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(out) == 0 {
		return nil, &Error{File: file, Msg: "no resources in the file"}
	}
	return out, nil
}

// yamlLine digs the line out of a yaml.v3 error ("yaml: line 3: …").
func yamlLine(err error) int {
	var line int
	if _, scanErr := fmt.Sscanf(strings.TrimPrefix(err.Error(), "yaml: "), "line %d:", &line); scanErr != nil {
		return 0
	}
	return line
}

type docDecoder struct {
	file   string
	errs   []error
	budget int
}

func (d *docDecoder) errorf(n *yaml.Node, field, format string, args ...any) {
	e := &Error{File: d.file, Field: field, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line = n.Line
	}
	d.errs = append(d.errs, e)
}

// resource decodes one document; ok is false when it had errors (or was
// empty).
func (d *docDecoder) resource(doc *yaml.Node) (Resource, bool) {
	var r Resource
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return r, false
	}
	top := doc.Content[0]
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
		return r, false // an empty document between two "---"
	}
	if top.Kind != yaml.MappingNode {
		d.errorf(top, "", "a resource is a mapping of kind, version, metadata and spec")
		return r, false
	}
	fields := map[string][2]*yaml.Node{}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		switch k.Value {
		case "kind", "version", "metadata", "spec":
			fields[k.Value] = [2]*yaml.Node{k, v}
		default:
			d.errorf(k, k.Value, "unknown field (a resource has kind, version, metadata and spec)")
		}
	}
	kindNode, ok := fields["kind"]
	if !ok {
		d.errorf(top, "kind", "missing (one of %s)", strings.Join(Kinds(), ", "))
		return r, false
	}
	kind, known := CanonicalKind(kindNode[1].Value)
	if !known {
		d.errorf(kindNode[1], "kind", "unknown kind %q (one of %s)", kindNode[1].Value, strings.Join(Kinds(), ", "))
		return r, false
	}
	r.Kind = kind
	if v, ok := fields["version"]; !ok {
		d.errorf(top, "version", "missing (a %s is %s)", kind, Version(kind))
	} else if r.Version = v[1].Value; r.Version != Version(kind) {
		d.errorf(v[1], "version", "%q is not a version of %s (it is %s)", r.Version, kind, Version(kind))
	}
	if m, ok := fields["metadata"]; !ok {
		d.errorf(top, "metadata", "missing (metadata.name names the %s)", kind)
	} else {
		d.into(m[1], &r.Metadata, "metadata")
	}
	r.Spec = newSpec(kind)
	if s, ok := fields["spec"]; ok {
		d.into(s[1], r.Spec, "spec")
	} else if kind != KindAuthPreference && kind != KindAuthGateway {
		d.errorf(top, "spec", "missing")
	}
	if len(d.errs) > 0 {
		return r, false
	}
	for _, fe := range Validate(r) {
		d.errorf(lookup(top, fe.Field), fe.Field, "%s", fe.Msg)
	}
	return r, len(d.errs) == 0
}

// into checks n for fields v's type does not have, then decodes it.
func (d *docDecoder) into(n *yaml.Node, v any, path string) {
	before := len(d.errs)
	d.known(n, reflect.TypeOf(v), path)
	if len(d.errs) > before {
		return
	}
	if err := n.Decode(v); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, msg := range te.Errors {
				line := 0
				if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil {
					msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
				}
				d.errs = append(d.errs, &Error{File: d.file, Line: line, Field: path, Msg: msg})
			}
			return
		}
		d.errorf(n, path, "%v", err)
	}
}

var timeType = reflect.TypeOf(time.Time{})

// known reports the mapping keys under n that t has no field for.
func (d *docDecoder) known(n *yaml.Node, t reflect.Type, path string) {
	if d.budget--; d.budget < 0 {
		if d.budget == -1 {
			d.errorf(n, path, "the document expands to more than %d nodes", maxNodes)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			f, ok := fieldByTag(t, k.Value)
			if !ok {
				d.errorf(k, join(path, k.Value), "unknown field (known: %s)", strings.Join(tags(t), ", "))
				continue
			}
			d.known(n.Content[i+1], f.Type, join(path, k.Value))
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, e := range n.Content {
			d.known(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			d.known(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))
		}
	}
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); yamlName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func tags(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		out = append(out, yamlName(t.Field(i)))
	}
	slices.Sort(out)
	return out
}

// lookup finds the node of a field path ("spec.roles[1]"), or the nearest
// parent that exists, for an error's line.
func lookup(top *yaml.Node, path string) *yaml.Node {
	n := top
	for _, part := range strings.Split(path, ".") {
		name, idx, _ := strings.Cut(part, "[")
		next := child(n, name)
		if next == nil {
			return n
		}
		n = next
		if idx != "" && n.Kind == yaml.SequenceNode {
			var i int
			if _, err := fmt.Sscanf(idx, "%d]", &i); err == nil && i < len(n.Content) {
				n = n.Content[i]
			}
		}
	}
	return n
}

func child(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
