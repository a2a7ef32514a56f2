package output

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		f    Format
		want string
	}{
		{JSON, "{\n  \"a\": 1\n}\n"},
		{YAML, "a: 1\n"},
		{Text, "text\n"},
	} {
		var buf bytes.Buffer
		err := Print(&buf, tc.f, map[string]int{"a": 1}, func(w io.Writer) error {
			_, err := io.WriteString(w, "text\n")
			return err
		})
		if err != nil || buf.String() != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.f, buf.String(), err, tc.want)
		}
	}
	var f Format
	if err := f.Set("xml"); err == nil || !strings.Contains(err.Error(), "xml") {
		t.Errorf("Set(xml) = %v", err)
	}
}

func TestTerseLogger(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger("tele", &buf, false)
	log.Info("hidden")
	log.Warn("app.yaml:6:1: nodeProfiles: has no effect yet", "n", 1)
	if got, want := buf.String(), "tele: warning: app.yaml:6:1: nodeProfiles: has no effect yet n=1\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
