package atomicdir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFill(t *testing.T) {
	write := func(tmp string) error { return os.WriteFile(filepath.Join(tmp, "f"), []byte("x"), 0o644) }
	fail := func(tmp string) error {
		if err := write(tmp); err != nil {
			return err
		}
		return errors.New("interrupted")
	}
	tests := []struct {
		name    string
		prepare func(dir string)
		fill    func(string) error
		wantErr string
	}{
		{"new", func(string) {}, write, ""},
		{"empty", func(d string) { os.Mkdir(d, 0o755) }, write, ""},
		{"not empty", func(d string) { os.Mkdir(d, 0o755); os.WriteFile(filepath.Join(d, "old"), nil, 0o644) }, write, "not empty"},
		{"fill fails", func(string) {}, fail, "interrupted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "out")
			tt.prepare(dir)
			err := Fill(dir, 0o755, tt.fill)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			ents, _ := os.ReadDir(parent)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".out.tmp-") {
					t.Errorf("temporary directory left: %s", e.Name())
				}
			}
			if tt.wantErr != "" {
				return
			}
			st, err := os.Stat(dir)
			if err != nil || st.Mode().Perm() != 0o755 {
				t.Fatalf("dir: %v, %v", st, err)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(b) != "x" {
				t.Errorf("content %q, %v", b, err)
			}
		})
	}
}

// A version's directory on a fresh node is the first under its parent.
func TestFillMissingParent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lib", "gravity", "0.1.0")
	if err := Fill(dir, 0o755, func(tmp string) error { return os.WriteFile(filepath.Join(tmp, "f"), nil, 0o644) }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "f")); err != nil {
		t.Fatal(err)
	}
}
