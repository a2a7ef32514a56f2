package discover

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// podSpecPaths maps each pod-bearing kind to the path of its PodSpec.
// Kinds are matched without apiVersion so CRDs reusing a name, or old API
// groups (extensions/v1beta1 Deployment), are read the same way; a path
// that does not exist simply yields no images.
var podSpecPaths = map[string][]string{
	"Pod":                   {"spec"},
	"Deployment":            {"spec", "template", "spec"},
	"StatefulSet":           {"spec", "template", "spec"},
	"DaemonSet":             {"spec", "template", "spec"},
	"ReplicaSet":            {"spec", "template", "spec"},
	"ReplicationController": {"spec", "template", "spec"},
	"Job":                   {"spec", "template", "spec"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template", "spec"},
	"PodTemplate":           {"template", "spec"},
}

// containerLists are the PodSpec fields holding containers, with the label
// used in Users.
var containerLists = []struct{ key, label string }{
	{"initContainers", "initContainer"},
	{"containers", "container"},
	{"ephemeralContainers", "ephemeralContainer"},
}

const (
	imageSetKind = "ImageSet"
	// maxListDepth bounds recursion through List items; anchors can make
	// a node contain itself.
	maxListDepth = 4
	maxAliasHops = 64
)

// imageField is one image reference found in a YAML node tree.
type imageField struct {
	node  *yaml.Node // the scalar holding the reference, aliases resolved
	ref   string
	owner string // "Deployment/default/web (initContainer init)"
}

// scan is what one YAML stream holds.
type scan struct {
	fields []imageField
	empty  []string // owners whose image field is empty
	notes  []string // documents skipped because they are not objects
}

// posError is an error at a line of a YAML stream.
type posError struct {
	Line int
	Msg  string
	Err  error // optional cause, appended to Msg
}

func (e *posError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.text())
	}
	return e.text()
}

func (e *posError) text() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *posError) Unwrap() error { return e.Err }

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parserProblems are go-yaml's parser (not scanner) messages. go-yaml
// reports their line counted from 0 (it adds 1 only for scanner errors).
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// syntaxError turns go-yaml's "yaml: line N: msg" into a posError so
// callers can print "file:N: msg".
func syntaxError(err error) error {
	msg := err.Error()
	if m := yamlLineErr.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if parserProblems[m[2]] {
			line++
		}
		return &posError{Line: line, Msg: m[2]}
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if parserProblems[msg] {
		return &posError{Line: 1, Msg: msg} // go-yaml omits line 0
	}
	return &posError{Msg: msg}
}

// parseStream splits a multi-document YAML stream into document nodes.
func parseStream(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, syntaxError(err)
		}
		docs = append(docs, &n)
	}
}

// scanStream finds every image reference in a multi-document YAML stream.
func scanStream(data []byte) (*scan, error) {
	docs, err := parseStream(data)
	if err != nil {
		return nil, err
	}
	s := &scan{}
	for i, d := range docs {
		if err := s.document(d, i+1); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *scan) document(d *yaml.Node, index int) error {
	if d.Kind == yaml.DocumentNode {
		if len(d.Content) == 0 {
			return nil
		}
		d = d.Content[0]
	}
	root := resolve(d)
	if isEmpty(root) {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		s.notes = append(s.notes, fmt.Sprintf("document %d (line %d) is not a Kubernetes object", index, d.Line))
		return nil
	}
	kind, err := lookup(root, "kind")
	if err != nil {
		return err
	}
	if scalarValue(kind) == "" {
		s.notes = append(s.notes, fmt.Sprintf("document %d (line %d) has no kind", index, d.Line))
		return nil
	}
	return s.object(root, "", true, 0)
}

// isEmpty reports documents that hold nothing: a null or an empty mapping.
func isEmpty(n *yaml.Node) bool {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Tag == "!!null"
	case yaml.MappingNode:
		return len(n.Content) == 0
	}
	return false
}

// object collects images of one Kubernetes object. forceKind is used for
// hook Jobs, whose typed form may lack TypeMeta.
func (s *scan) object(obj *yaml.Node, forceKind string, withNamespace bool, depth int) error {
	kind := forceKind
	if kind == "" {
		k, err := lookup(obj, "kind")
		if err != nil {
			return err
		}
		kind = scalarValue(k)
	}
	// "List" and typed lists ("PodList") hold objects in items.
	if strings.HasSuffix(kind, "List") {
		return s.list(obj, depth)
	}
	id, err := objectName(obj, kind, withNamespace)
	if err != nil {
		return err
	}
	if kind == imageSetKind {
		return s.imageSet(obj, id)
	}
	path, ok := podSpecPaths[kind]
	if !ok {
		return nil
	}
	spec, err := lookupPath(obj, path)
	if err != nil || spec == nil {
		return err
	}
	return s.podSpec(spec, id)
}

func (s *scan) list(obj *yaml.Node, depth int) error {
	if depth >= maxListDepth {
		return &posError{Line: obj.Line, Msg: "Lists nested too deeply"}
	}
	items, err := lookup(obj, "items")
	if err != nil || items == nil {
		return err
	}
	if items.Kind != yaml.SequenceNode {
		return nil // a CRD whose kind merely ends in "List"
	}
	for _, it := range items.Content {
		it = resolve(it)
		if isEmpty(it) {
			continue
		}
		if it.Kind != yaml.MappingNode || scalarValue(lookupFirst(it, "kind")) == "" {
			s.notes = append(s.notes, fmt.Sprintf("List item at line %d has no kind", it.Line))
			continue
		}
		if err := s.object(it, "", true, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// objectName renders "Kind/namespace/name"; the namespace is shown only
// where it is written (and not for hooks, whose namespace Gravity picks).
func objectName(obj *yaml.Node, kind string, withNamespace bool) (string, error) {
	meta, err := lookup(obj, "metadata")
	if err != nil || meta == nil || meta.Kind != yaml.MappingNode {
		return kind + "/<unnamed>", err
	}
	nameNode, err := lookup(meta, "name")
	if err != nil {
		return "", err
	}
	name := scalarValue(nameNode)
	if name == "" {
		name = scalarValue(lookupFirst(meta, "generateName")) + "<generated>"
	}
	if ns := scalarValue(lookupFirst(meta, "namespace")); withNamespace && ns != "" {
		return kind + "/" + ns + "/" + name, nil
	}
	return kind + "/" + name, nil
}

func (s *scan) podSpec(spec *yaml.Node, id string) error {
	if spec.Kind != yaml.MappingNode {
		return nil
	}
	for _, cl := range containerLists {
		list, err := lookup(spec, cl.key)
		if err != nil {
			return err
		}
		if list == nil || isEmpty(list) {
			continue
		}
		if list.Kind != yaml.SequenceNode {
			return &posError{Line: list.Line, Msg: fmt.Sprintf("%s: %s is not a list", id, cl.key)}
		}
		for i, c := range list.Content {
			if err := s.container(resolve(c), id, cl.label, i); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *scan) container(c *yaml.Node, id, label string, index int) error {
	if c.Kind != yaml.MappingNode {
		return &posError{Line: c.Line, Msg: fmt.Sprintf("%s: %s %d is not a mapping", id, label, index)}
	}
	nameNode, err := lookup(c, "name")
	if err != nil {
		return err
	}
	cname := scalarValue(nameNode)
	if cname == "" {
		cname = "#" + strconv.Itoa(index)
	}
	return s.image(c, fmt.Sprintf("%s (%s %s)", id, label, cname))
}

func (s *scan) imageSet(obj *yaml.Node, id string) error {
	images, err := lookupPath(obj, []string{"spec", "images"})
	if err != nil || images == nil || isEmpty(images) {
		return err
	}
	if images.Kind != yaml.SequenceNode {
		return &posError{Line: images.Line, Msg: id + ": spec.images is not a list"}
	}
	for i, it := range images.Content {
		it = resolve(it)
		if it.Kind != yaml.MappingNode {
			return &posError{Line: it.Line, Msg: fmt.Sprintf("%s: spec.images[%d] is not a mapping", id, i)}
		}
		if err := s.image(it, fmt.Sprintf("%s (images[%d])", id, i)); err != nil {
			return err
		}
	}
	return nil
}

// image records the "image" field of m, which must be a string scalar.
func (s *scan) image(m *yaml.Node, owner string) error {
	n, err := lookup(m, "image")
	if err != nil {
		return err
	}
	if n == nil || (n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || n.Value == "")) {
		s.empty = append(s.empty, owner)
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return &posError{Line: n.Line, Msg: owner + ": image is not a string"}
	}
	if _, err := parseRef(n.Value); err != nil {
		return &posError{Line: n.Line, Msg: owner, Err: err}
	}
	s.fields = append(s.fields, imageField{node: n, ref: n.Value, owner: owner})
	return nil
}

// resolve follows aliases to the anchored node.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < maxAliasHops; i++ {
		n = n.Alias
	}
	return n
}

// lookup returns the value of key in mapping m, or nil. A key written twice
// is an error: the API server would reject it, and picking one silently
// could vendor the wrong image.
func lookup(m *yaml.Node, key string) (*yaml.Node, error) {
	m = resolve(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	var found *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := resolve(m.Content[i])
		if k.Kind != yaml.ScalarNode || k.Value != key {
			continue
		}
		if found != nil {
			return nil, &posError{Line: k.Line, Msg: fmt.Sprintf("duplicate key %q", key)}
		}
		found = resolve(m.Content[i+1])
	}
	return found, nil
}

// lookupFirst is lookup for fields only used to label and classify.
func lookupFirst(m *yaml.Node, key string) *yaml.Node {
	n, _ := lookup(m, key)
	return n
}

func lookupPath(n *yaml.Node, path []string) (*yaml.Node, error) {
	for _, key := range path {
		next, err := lookup(n, key)
		if err != nil || next == nil {
			return nil, err
		}
		n = next
	}
	return n, nil
}

func scalarValue(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return ""
	}
	return n.Value
}
