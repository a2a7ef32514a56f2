package tsh

import (
	"io"
	"strings"
	"testing"
)

// Passwords from a pipe: one line each, the newline (and a CR) stripped,
// the last line without a newline too; nothing more is an error.
func TestPrompterStdin(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"secret-password\n", []string{"secret-password"}, false},
		{"secret-password\r\n123456\n", []string{"secret-password", "123456"}, false},
		{"no-newline", []string{"no-newline"}, false},
		{" spaces kept \n", []string{" spaces kept "}, false},
		{"", nil, true},
	} {
		p := newPrompter(strings.NewReader(tc.in), io.Discard)
		for _, want := range tc.want {
			got, err := p.secret("Password: ")
			if err != nil || got != want {
				t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, want)
			}
		}
		if tc.err {
			if _, err := p.secret("Password: "); err == nil {
				t.Errorf("%q: no error past the input", tc.in)
			}
		}
	}
}
