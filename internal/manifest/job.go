package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	batchv1 "k8s.io/api/batch/v1"
	kjson "sigs.k8s.io/json"
	sigsyaml "sigs.k8s.io/yaml"
)

// jobParser strictly decodes one hook Job. Decoding goes YAML -> JSON ->
// batchv1.Job exactly as the Kubernetes API machinery does (so custom types
// like resource.Quantity behave as in kubectl); the yaml.v3 node tree of the
// same text is used only to put line and column on the errors.
type jobParser struct {
	*decoder
	display string                         // file named in errors
	prefix  string                         // field path prefix ("hooks.install.job" when inline)
	mapPos  func(line, col int) (int, int) // Job text position -> display file position
}

func (j *jobParser) fail(n *yaml.Node, field, format string, args ...any) {
	e := &Error{File: j.display, Field: joinPath(j.prefix, field), Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = j.mapPos(n.Line, n.Column)
	} else {
		e.Line, e.Column = j.mapPos(0, 0)
	}
	j.sink.add(e)
}

func (j *jobParser) parse(data []byte) (*batchv1.Job, bool) {
	root, ok := j.singleDocument(data)
	if !ok {
		return nil, false
	}
	if root.Kind != yaml.MappingNode {
		j.fail(root, "", "expected a batch/v1 Job, got %s", describe(root))
		return nil, false
	}
	if !j.noDuplicates(root, "", 0) || !j.checkHeader(root) {
		return nil, false
	}
	js, err := sigsyaml.YAMLToJSONStrict(data)
	if err != nil {
		j.fail(root, "", "cannot convert the Job to JSON: %v", err)
		return nil, false
	}
	job := &batchv1.Job{}
	strict, err := kjson.UnmarshalStrict(js, job)
	if err != nil {
		j.typeError(root, err)
		return nil, false
	}
	for _, s := range strict {
		j.strictError(root, s)
	}
	if len(strict) > 0 {
		return nil, false
	}
	if len(job.Spec.Template.Spec.Containers) == 0 {
		n, _ := lookup(root, splitPath("spec.template.spec"))
		j.fail(n, "spec.template.spec.containers", "a Job needs at least one container")
		return nil, false
	}
	return job, true
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// singleDocument returns the root node of the only non-empty document.
func (j *jobParser) singleDocument(data []byte) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root *yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			j.syntaxError(err)
			return nil, false
		}
		if len(doc.Content) == 0 || isNull(doc.Content[0]) {
			continue // a stray "---" or a comment-only document
		}
		if root != nil {
			j.fail(doc.Content[0], "", "a hook must be exactly one Job; found a second YAML document")
			return nil, false
		}
		root = doc.Content[0]
	}
	if root == nil {
		j.fail(nil, "", "the hook Job is empty")
		return nil, false
	}
	return root, true
}

func (j *jobParser) syntaxError(err error) {
	msg := err.Error()
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	e := &Error{File: j.display, Field: j.prefix, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: "), Err: err}
	e.Line, e.Column = j.mapPos(line, 0)
	j.sink.add(e)
}

// noDuplicates reports duplicate mapping keys, which JSON conversion would reject without a position.
func (j *jobParser) noDuplicates(n *yaml.Node, path string, depth int) bool {
	if depth > 100 {
		j.fail(n, path, "document nested too deeply")
		return false
	}
	ok := true
	switch n.Kind {
	case yaml.MappingNode:
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			p := joinPath(path, k.Value)
			if first, dup := seen[k.Value]; dup && k.Kind == yaml.ScalarNode {
				j.fail(k, p, "duplicate key %q (first set at line %d)", k.Value, first)
				ok = false
			}
			seen[k.Value] = k.Line
			ok = j.noDuplicates(n.Content[i+1], p, depth+1) && ok
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			ok = j.noDuplicates(c, fmt.Sprintf("%s[%d]", path, i), depth+1) && ok
		}
	}
	return ok
}

// checkHeader insists on apiVersion batch/v1 and kind Job: the JSON decoder
// would happily read any object into a Job.
func (j *jobParser) checkHeader(root *yaml.Node) bool {
	ok := true
	for _, want := range [][2]string{{"apiVersion", "batch/v1"}, {"kind", "Job"}} {
		_, val := mapValue(root, want[0])
		switch {
		case val == nil:
			j.fail(root, want[0], "required field is missing (a hook must be a batch/v1 Job)")
			ok = false
		case val.Kind != yaml.ScalarNode || val.Value != want[1]:
			j.fail(val, want[0], "a hook must be a batch/v1 Job: want %q, got %s", want[1], describe(val))
			ok = false
		}
	}
	return ok
}

// typeError places a JSON type mismatch ("cannot unmarshal array into ... string").
func (j *jobParser) typeError(root *yaml.Node, err error) {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		j.fail(root, "", "invalid Job: %v", err)
		return
	}
	n, path := findTyped(root, strings.Split(te.Field, "."), te.Value)
	got := te.Value
	if n != nil {
		got = describe(n)
	}
	j.fail(n, path, "wrong type: got %s, want %s", got, goTypeName(te.Type))
}

// strictError places an unknown-field error and suggests the closest field.
func (j *jobParser) strictError(root *yaml.Node, err error) {
	var fe kjson.FieldError
	if !errors.As(err, &fe) {
		j.fail(root, "", "invalid Job: %v", err)
		return
	}
	segs := splitPath(fe.FieldPath())
	_, key := lookup(root, segs)
	name := segs[len(segs)-1]
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if strings.HasPrefix(msg, "unknown field") {
		msg = fmt.Sprintf("unknown field %q%s", name, suggest(name, jobFieldNames(segs[:len(segs)-1])))
	}
	j.fail(key, fe.FieldPath(), "%s", msg)
}

// splitPath splits "a.b[0].c" into "a", "b", "[0]", "c".
func splitPath(p string) []string {
	var segs []string
	for _, part := range strings.Split(p, ".") {
		for {
			i := strings.IndexByte(part, '[')
			if i < 0 {
				break
			}
			if i > 0 {
				segs = append(segs, part[:i])
			}
			end := strings.IndexByte(part[i:], ']')
			if end < 0 {
				break
			}
			segs = append(segs, part[i:i+end+1])
			part = part[i+end+1:]
		}
		if part != "" {
			segs = append(segs, part)
		}
	}
	return segs
}

// lookup follows segs from n, returning the deepest value reached and the key
// node of the last segment found (the best place to point at).
func lookup(n *yaml.Node, segs []string) (value, at *yaml.Node) {
	at = n
	for _, s := range segs {
		n = deref(n)
		if idx, isIndex := indexSeg(s); isIndex {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return n, at
			}
			n = n.Content[idx]
			at = n
			continue
		}
		key, val := mapValue(n, s)
		if val == nil {
			return n, at
		}
		n, at = val, key
	}
	return n, at
}

// findTyped finds the node at a dotted path without list indexes (as in
// json.UnmarshalTypeError.Field) whose JSON type is want, searching every list
// element; it returns the path with indexes.
func findTyped(root *yaml.Node, segs []string, want string) (*yaml.Node, string) {
	var first *yaml.Node
	var firstPath string
	var walk func(n *yaml.Node, segs []string, path string, depth int) *yaml.Node
	var found string
	walk = func(n *yaml.Node, segs []string, path string, depth int) *yaml.Node {
		n = deref(n)
		if n == nil || depth > 100 {
			return nil
		}
		if n.Kind == yaml.SequenceNode && len(segs) > 0 {
			for i, c := range n.Content {
				if r := walk(c, segs, fmt.Sprintf("%s[%d]", path, i), depth+1); r != nil {
					return r
				}
			}
			return nil
		}
		if len(segs) == 0 {
			return matchKind(n, path, want, &first, &firstPath, &found)
		}
		_, val := mapValue(n, segs[0])
		if val == nil {
			return nil
		}
		return walk(val, segs[1:], joinPath(path, segs[0]), depth+1)
	}
	if n := walk(root, segs, "", 0); n != nil {
		return n, found
	}
	if first != nil {
		return first, firstPath
	}
	return root, strings.Join(segs, ".")
}

// matchKind accepts n (or, for maps and lists, one of its elements) when its
// JSON type is want; it remembers the first node seen as a fallback.
func matchKind(n *yaml.Node, path, want string, first **yaml.Node, firstPath, found *string) *yaml.Node {
	if *first == nil {
		*first, *firstPath = n, path
	}
	if strings.HasPrefix(want, jsonKind(n)) {
		*found = path
		return n
	}
	for i, c := range n.Content {
		c = deref(c)
		if n.Kind == yaml.MappingNode && i%2 == 0 {
			continue
		}
		if c != nil && strings.HasPrefix(want, jsonKind(c)) {
			*found = path
			return c
		}
	}
	return nil
}

func jsonKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "object"
	case yaml.SequenceNode:
		return "array"
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		return "number"
	case "!!bool":
		return "bool"
	case "!!null":
		return "null"
	}
	return "string"
}

func indexSeg(s string) (int, bool) {
	if len(s) < 3 || s[0] != '[' || s[len(s)-1] != ']' {
		return 0, false
	}
	i, err := strconv.Atoi(s[1 : len(s)-1])
	return i, err == nil && i >= 0
}

func deref(n *yaml.Node) *yaml.Node {
	for hops := 0; n != nil && n.Kind == yaml.AliasNode && hops < 100; hops++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	return n
}

// mapValue returns the key and value nodes of name in mapping n.
func mapValue(n *yaml.Node, name string) (key, val *yaml.Node) {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := deref(n.Content[i]); k != nil && k.Value == name {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

func goTypeName(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

// jobFieldNames lists the JSON field names of the Job type at a path, for suggestions.
func jobFieldNames(segs []string) []string {
	t := reflect.TypeFor[batchv1.Job]()
	for _, s := range segs {
		t = elemType(t)
		if _, isIndex := indexSeg(s); isIndex {
			continue
		}
		f, ok := jsonField(t, s)
		if !ok {
			return nil
		}
		t = f
	}
	return jsonNames(elemType(t))
}

// elemType strips pointers, slices and maps down to the type that holds fields.
func elemType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	return t
}

func jsonField(t reflect.Type, name string) (reflect.Type, bool) {
	if t.Kind() != reflect.Struct {
		return nil, false
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := tagName(f.Tag.Get("json"))
		if tag == name {
			return f.Type, true
		}
		if f.Anonymous && tag == "" {
			if ft, ok := jsonField(elemType(f.Type), name); ok {
				return ft, true
			}
		}
	}
	return nil, false
}

func jsonNames(t reflect.Type) []string {
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := tagName(f.Tag.Get("json"))
		switch {
		case f.Anonymous && tag == "":
			names = append(names, jsonNames(elemType(f.Type))...)
		case tag != "" && tag != "-":
			names = append(names, tag)
		}
	}
	return names
}
