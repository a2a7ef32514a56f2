package manifest

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder walks a yaml.Node tree against the schema types by reflection.
// Doing this by hand rather than with yaml.Decoder.KnownFields gives every
// error a field path and position, reports all problems of a file at once,
// and records where each field was written (for later checks and warnings).
type decoder struct {
	file string
	sink *errorSink
	// pos maps a field path ("nodeProfiles[1].name") to its key and value nodes.
	pos map[string]fieldPos
	// keys lists every mapping key that named a struct field, in file order.
	keys []string
	// budget bounds the nodes visited, so alias bombs end in an error.
	budget int
	// lines is the source text, to place errors inside inline hook Jobs.
	lines []string
	// failed holds the paths that already have an error.
	failed map[string]bool
}

type fieldPos struct {
	key, value *yaml.Node
}

const nodeBudget = 1 << 20

func newDecoder(file string, sink *errorSink) *decoder {
	return &decoder{file: file, sink: sink, pos: map[string]fieldPos{}, budget: nodeBudget, failed: map[string]bool{}}
}

func (d *decoder) errorf(n *yaml.Node, field, format string, args ...any) {
	e := &Error{File: d.file, Field: field, Msg: fmt.Sprintf(format, args...)}
	d.failed[field] = true
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.sink.add(e)
}

// decode stores n into v (an addressable value), reporting errors under path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n, ok := d.resolve(n, path)
	if !ok || isNull(n) {
		return
	}
	switch {
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case v.Type() == reflect.TypeFor[time.Time]():
		d.decodeTime(n, v, path)
	case v.Kind() == reflect.Struct:
		d.decodeStruct(n, v, path)
	case v.Kind() == reflect.Slice:
		d.decodeSlice(n, v, path)
	case v.Kind() == reflect.Map:
		d.decodeMap(n, v, path)
	default:
		d.decodeScalar(n, v, path)
	}
}

// resolve follows aliases and charges the node budget.
func (d *decoder) resolve(n *yaml.Node, path string) (*yaml.Node, bool) {
	for hops := 0; n != nil && n.Kind == yaml.AliasNode; hops++ {
		if hops > 100 || n.Alias == nil {
			d.errorf(n, path, "unresolvable alias")
			return nil, false
		}
		n = n.Alias
	}
	if n == nil {
		return nil, false
	}
	d.budget--
	if d.budget < 0 {
		if d.budget == -1 {
			d.errorf(n, path, "document too large or too deeply aliased")
		}
		return nil, false
	}
	return n, true
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	fields := structFields(v.Type())
	d.eachKey(n, path, func(name, field string, key, val *yaml.Node) {
		idx, known := fields.index[name]
		if !known {
			d.errorf(key, field, "unknown field %q%s", name, suggest(name, fields.names))
			return
		}
		d.pos[field] = fieldPos{key: key, value: val}
		d.keys = append(d.keys, field)
		d.decode(val, v.Field(idx), field)
	})
}

// eachKey calls fn for every key of the mapping n, in file order, after
// reporting keys that are not names and keys written twice.
func (d *decoder) eachKey(n *yaml.Node, path string, fn func(name, field string, key, val *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content) && !d.sink.full(); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		name, ok := d.keyName(key, path)
		if !ok {
			continue
		}
		field := joinPath(path, name)
		if first, dup := seen[name]; dup {
			d.errorf(key, field, "duplicate key %q (first set at line %d)", name, first.Line)
			continue
		}
		seen[name] = key
		fn(name, field, key, val)
	}
}

// keyName returns a mapping key's text, rejecting keys that cannot be field names.
func (d *decoder) keyName(key *yaml.Node, path string) (string, bool) {
	key, ok := d.resolve(key, path)
	if !ok {
		return "", false
	}
	if key.Kind != yaml.ScalarNode {
		d.errorf(key, path, "mapping key must be a string, got %s", describe(key))
		return "", false
	}
	if key.ShortTag() == "!!merge" {
		d.errorf(key, path, "YAML merge keys (<<) are not supported; write the fields out")
		return "", false
	}
	return key.Value, true
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		if d.sink.full() {
			break
		}
		p := fmt.Sprintf("%s[%d]", path, i)
		d.pos[p] = fieldPos{value: item}
		d.decode(item, s.Index(i), p)
	}
	v.Set(s)
}

// decodeMap handles the only map type in the schema: map[string]string (labels, selectors).
func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	d.eachKey(n, path, func(name, field string, _, val *yaml.Node) {
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, elem, field)
		m.SetMapIndex(reflect.ValueOf(name).Convert(v.Type().Key()), elem)
	})
	v.Set(m)
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		hint := ""
		if strings.HasSuffix(path, ".job") && n.Kind == yaml.MappingNode {
			hint = " (write the Job as a block string, \"job: |\", or use file://)"
		}
		d.errorf(n, path, "expected %s, got %s%s", kindName(v.Kind()), describe(n), hint)
		return
	}
	tag := n.ShortTag()
	switch v.Kind() {
	case reflect.String:
		if tag != "!!str" {
			d.errorf(n, path, "expected a string, got %s (quote it: %q)", describe(n), n.Value)
			return
		}
		v.SetString(n.Value)
		if c, ok := v.Addr().Interface().(checker); ok {
			if err := c.check(); err != nil {
				d.errorf(n, path, "%v", err)
			}
		}
	case reflect.Bool:
		if tag != "!!bool" {
			d.errorf(n, path, "expected true or false, got %s", describe(n))
			return
		}
		var b bool
		d.setDecoded(n, &b, path)
		v.SetBool(b)
	case reflect.Int:
		d.decodeInt(n, v, path)
	default:
		// Unreachable with the schema types; kept so a new field type fails loudly.
		d.errorf(n, path, "internal error: unsupported field type %s", v.Type())
	}
}

func (d *decoder) decodeInt(n *yaml.Node, v reflect.Value, path string) {
	if n.ShortTag() != "!!int" {
		d.errorf(n, path, "expected an integer, got %s", describe(n))
		return
	}
	var i int64
	if !d.setDecoded(n, &i, path) {
		return
	}
	if v.OverflowInt(i) {
		d.errorf(n, path, "integer %s out of range", n.Value)
		return
	}
	v.SetInt(i)
}

func (d *decoder) decodeTime(n *yaml.Node, v reflect.Value, path string) {
	var t time.Time
	switch {
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!timestamp":
		if !d.setDecoded(n, &t, path) {
			return
		}
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str":
		parsed, err := time.Parse(time.RFC3339, n.Value)
		if err != nil {
			d.errorf(n, path, "expected an RFC 3339 timestamp (e.g. 2020-01-02T15:04:05Z), got %q", n.Value)
			return
		}
		t = parsed
	default:
		d.errorf(n, path, "expected a timestamp, got %s", describe(n))
		return
	}
	v.Set(reflect.ValueOf(t))
}

// setDecoded lets yaml.v3 convert a scalar whose tag was already checked.
func (d *decoder) setDecoded(n *yaml.Node, out any, path string) bool {
	if err := n.Decode(out); err != nil {
		d.errorf(n, path, "invalid value %q: %v", n.Value, err)
		return false
	}
	return true
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node's type for messages: `a list`, `the number 3`.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	switch n.ShortTag() {
	case "!!str":
		return fmt.Sprintf("the string %q", n.Value)
	case "!!int", "!!float":
		return "the number " + n.Value
	case "!!bool":
		return "the boolean " + n.Value
	case "!!null":
		return "null"
	case "!!timestamp":
		return "the timestamp " + n.Value
	}
	return fmt.Sprintf("a %s value", n.ShortTag())
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int:
		return "an integer"
	}
	return k.String()
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// fieldTable is the yaml-name view of a struct type.
type fieldTable struct {
	index map[string]int
	names []string
}

var fieldTables sync.Map // reflect.Type -> *fieldTable

func structFields(t reflect.Type) *fieldTable {
	if ft, ok := fieldTables.Load(t); ok {
		return ft.(*fieldTable)
	}
	ft := &fieldTable{index: map[string]int{}}
	for i := range t.NumField() {
		name := tagName(t.Field(i).Tag.Get("yaml"))
		if name == "" || name == "-" {
			continue
		}
		ft.index[name] = i
		ft.names = append(ft.names, name)
	}
	fieldTables.Store(t, ft)
	return ft
}

func tagName(tag string) string {
	name, _, _ := strings.Cut(tag, ",")
	return name
}

func fieldNames(t reflect.Type) []string {
	return append([]string(nil), structFields(t).names...)
}

// fieldByName returns the value of the field of *s with the given yaml name.
func fieldByName(s any, name string) (any, bool) {
	v := reflect.ValueOf(s).Elem()
	idx, ok := structFields(v.Type()).index[name]
	if !ok {
		return nil, false
	}
	return v.Field(idx).Interface(), true
}
