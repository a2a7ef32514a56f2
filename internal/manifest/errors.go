package manifest

import (
	"fmt"
	"strings"
)

// Error is one problem in a manifest or hook file, located by line, column
// (1-based; 0 when unknown) and the field path ("hooks.install.job").
type Error struct {
	File   string
	Line   int
	Column int
	Field  string
	Msg    string
	// Err is the underlying cause (e.g. an fs error), if any.
	Err error
}

// Error formats as "file:line:col: field: msg", leaving out what is unknown.
func (e *Error) Error() string {
	return formatPos(e.File, e.Line, e.Column, e.Field, e.Msg)
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Warning is a valid field that has no behaviour yet, or another non-fatal note.
type Warning struct {
	File   string
	Line   int
	Column int
	Field  string
	Msg    string
}

// String formats like Error.
func (w Warning) String() string {
	return formatPos(w.File, w.Line, w.Column, w.Field, w.Msg)
}

// ErrorList is every error found in one Parse, in file order.
// errors.As(err, &e) with e *Error yields the first.
type ErrorList []*Error

// Error prints one error per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the errors to errors.Is and errors.As.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

func formatPos(file string, line, col int, field, msg string) string {
	var b strings.Builder
	b.WriteString(file)
	if line > 0 {
		fmt.Fprintf(&b, ":%d", line)
		if col > 0 {
			fmt.Fprintf(&b, ":%d", col)
		}
	}
	if field != "" {
		b.WriteString(": ")
		b.WriteString(field)
	}
	b.WriteString(": ")
	b.WriteString(msg)
	return b.String()
}

// maxErrors bounds the report so a garbage file cannot produce megabytes of errors.
const maxErrors = 50

// errorSink collects errors of one Parse.
type errorSink struct {
	errs ErrorList
}

func (s *errorSink) add(e *Error) {
	if len(s.errs) < maxErrors {
		s.errs = append(s.errs, e)
	}
}

func (s *errorSink) full() bool { return len(s.errs) >= maxErrors }

func (s *errorSink) err() error {
	if len(s.errs) == 0 {
		return nil
	}
	return s.errs
}
