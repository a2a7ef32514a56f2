package discover

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Rewrite is one image reference changed by RewriteYAML.
type Rewrite struct {
	From, To string
	Line     int
}

// ErrUnsupportedScalar is returned for image fields whose YAML form cannot
// be rewritten in place (block scalars); the file is left to the author.
var ErrUnsupportedScalar = errors.New("image written as a block scalar cannot be rewritten in place")

// splice replaces data[start:end] with text.
type splice struct {
	start, end int
	text       string
	rw         Rewrite
}

// RewriteYAML points the image fields of pod-bearing kinds and ImageSets in
// a (multi-document) YAML stream at registry (see LocalName). Only the bytes
// of each rewritten scalar change; comments, order and quoting elsewhere are
// kept, so the vendored file still reads as its author wrote it.
func RewriteYAML(data []byte, registry string) ([]byte, []Rewrite, error) {
	s, err := scanStream(data)
	if err != nil {
		return nil, nil, err
	}
	splices, err := planSplices(data, s.fields, registry)
	if err != nil {
		return nil, nil, err
	}
	if len(splices) == 0 {
		return data, nil, nil
	}
	out := applySplices(data, splices)
	if err := verifyRewrite(out, s.fields, registry); err != nil {
		return nil, nil, err
	}
	rws := make([]Rewrite, len(splices))
	for i, sp := range splices {
		rws[i] = sp.rw
	}
	return out, rws, nil
}

// RewriteFile is RewriteYAML without the list of changes.
func RewriteFile(data []byte, registry string) ([]byte, error) {
	out, _, err := RewriteYAML(data, registry)
	return out, err
}

func planSplices(data []byte, fields []imageField, registry string) ([]splice, error) {
	lines := lineStarts(data)
	seen := map[*yaml.Node]bool{}
	var splices []splice
	for _, f := range fields {
		if seen[f.node] {
			continue // one anchored scalar used by several containers
		}
		seen[f.node] = true
		to, err := LocalName(f.ref, registry)
		if err != nil {
			return nil, &posError{Line: f.node.Line, Msg: f.owner, Err: err}
		}
		if to == f.ref {
			continue
		}
		start, end, err := scalarSpan(data, lines, f.node)
		if err != nil {
			return nil, &posError{Line: f.node.Line, Msg: f.owner, Err: err}
		}
		splices = append(splices, splice{start, end, quoteLike(data[start], to),
			Rewrite{From: f.ref, To: to, Line: f.node.Line}})
	}
	slices.SortFunc(splices, func(a, b splice) int { return a.start - b.start })
	return splices, nil
}

func applySplices(data []byte, splices []splice) []byte {
	var b bytes.Buffer
	b.Grow(len(data) + 32*len(splices))
	prev := 0
	for _, sp := range splices {
		b.Write(data[prev:sp.start])
		b.WriteString(sp.text)
		prev = sp.end
	}
	b.Write(data[prev:])
	return b.Bytes()
}

// verifyRewrite re-reads the result: every image must now be the local
// name and nothing else may have moved. This guards the byte arithmetic
// against YAML forms it did not foresee.
func verifyRewrite(out []byte, before []imageField, registry string) error {
	s, err := scanStream(out)
	if err != nil {
		return fmt.Errorf("rewritten YAML does not parse: %w", err)
	}
	if len(s.fields) != len(before) {
		return fmt.Errorf("rewritten YAML has %d images, want %d", len(s.fields), len(before))
	}
	for i, f := range s.fields {
		want, err := LocalName(before[i].ref, registry)
		if err != nil {
			return err
		}
		if f.ref != want {
			return fmt.Errorf("rewritten YAML has image %q at line %d, want %q", f.ref, f.node.Line, want)
		}
	}
	return nil
}

var plainSafe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$`)

// quoteLike writes ref in the quoting style of the scalar it replaces.
func quoteLike(first byte, ref string) string {
	switch {
	case first == '"':
		return `"` + ref + `"`
	case first == '\'' || !plainSafe.MatchString(ref):
		return `'` + ref + `'`
	}
	return ref
}

// lineStarts returns the byte offset of each line as go-yaml counts lines:
// CR LF, CR, LF, NEL, LS and PS all end a line. A leading BOM is not part
// of line 1's columns.
func lineStarts(data []byte) []int {
	first := 0
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		first = 3
	}
	starts := []int{first}
	for i := first; i < len(data); {
		n := breakLen(data[i:])
		if n == 0 {
			i++
			continue
		}
		i += n
		starts = append(starts, i)
	}
	return starts
}

// breakLen is the length of the line break at the start of b, or 0.
func breakLen(b []byte) int {
	switch {
	case bytes.HasPrefix(b, []byte("\r\n")):
		return 2
	case b[0] == '\r' || b[0] == '\n':
		return 1
	case bytes.HasPrefix(b, []byte("\xc2\x85")):
		return 2
	case bytes.HasPrefix(b, []byte("\xe2\x80\xa8")), bytes.HasPrefix(b, []byte("\xe2\x80\xa9")):
		return 3
	}
	return 0
}

// nodeOffset converts a node's line and column (counted in characters) to
// a byte offset.
func nodeOffset(data []byte, lines []int, n *yaml.Node) (int, error) {
	if n.Line < 1 || n.Line > len(lines) || n.Column < 1 {
		return 0, fmt.Errorf("position %d:%d outside the file", n.Line, n.Column)
	}
	p := lines[n.Line-1]
	for c := 1; c < n.Column; c++ {
		if p >= len(data) {
			return 0, fmt.Errorf("position %d:%d outside the file", n.Line, n.Column)
		}
		_, size := utf8.DecodeRune(data[p:])
		p += size
	}
	return p, nil
}

// scalarSpan finds the bytes of scalar n: go-yaml places a node at its
// first property (anchor or tag), so those, and any blanks or comments
// after them, are skipped first.
func scalarSpan(data []byte, lines []int, n *yaml.Node) (start, end int, err error) {
	p, err := nodeOffset(data, lines, n)
	if err != nil {
		return 0, 0, err
	}
	p = skipProperties(data, p)
	if p >= len(data) {
		return 0, 0, fmt.Errorf("scalar at line %d not found", n.Line)
	}
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return 0, 0, ErrUnsupportedScalar
	case n.Style&yaml.DoubleQuotedStyle != 0:
		end, err = doubleQuotedEnd(data, p)
	case n.Style&yaml.SingleQuotedStyle != 0:
		end, err = singleQuotedEnd(data, p)
	default:
		end = p + len(n.Value)
		if end > len(data) || string(data[p:end]) != n.Value {
			err = fmt.Errorf("plain scalar %q at line %d not found as written", n.Value, n.Line)
		}
	}
	return p, end, err
}

// skipProperties moves past "&anchor" and "!tag" properties and the
// blanks, line breaks and comments that may follow them.
func skipProperties(data []byte, p int) int {
	for p < len(data) && (data[p] == '&' || data[p] == '!') {
		for p < len(data) && !isBlankOrBreak(data[p:]) {
			p++
		}
		for p < len(data) {
			switch {
			case data[p] == ' ' || data[p] == '\t':
				p++
			case breakLen(data[p:]) > 0:
				p += breakLen(data[p:])
			case data[p] == '#':
				for p < len(data) && breakLen(data[p:]) == 0 {
					p++
				}
			default:
				return p
			}
		}
	}
	return p
}

func isBlankOrBreak(b []byte) bool {
	return b[0] == ' ' || b[0] == '\t' || breakLen(b) > 0
}

func doubleQuotedEnd(data []byte, p int) (int, error) {
	if data[p] != '"' {
		return 0, fmt.Errorf("double-quoted scalar not found at byte %d", p)
	}
	for i := p + 1; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++ // the escaped character can never close the scalar
		case '"':
			return i + 1, nil
		}
	}
	return 0, errors.New("unterminated double-quoted scalar")
}

func singleQuotedEnd(data []byte, p int) (int, error) {
	if data[p] != '\'' {
		return 0, fmt.Errorf("single-quoted scalar not found at byte %d", p)
	}
	for i := p + 1; i < len(data); i++ {
		if data[i] != '\'' {
			continue
		}
		if i+1 < len(data) && data[i+1] == '\'' {
			i++ // '' is an escaped quote
			continue
		}
		return i + 1, nil
	}
	return 0, errors.New("unterminated single-quoted scalar")
}
