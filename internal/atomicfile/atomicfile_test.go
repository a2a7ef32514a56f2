package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name    string
		before  string // content already at the path; "" for none
		create  bool
		mode    fs.FileMode
		wantErr error
		want    string
	}{
		{name: "new file", mode: 0o600, want: "new"},
		{name: "replace", before: "old", mode: 0o644, want: "new"},
		{name: "create new", create: true, mode: 0o600, want: "new"},
		{name: "create refuses existing", before: "old", create: true, mode: 0o600, wantErr: fs.ErrExist, want: "old"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			if tt.before != "" {
				if err := os.WriteFile(path, []byte(tt.before), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write := WriteFile
			if tt.create {
				write = CreateFile
			}
			err := write(path, []byte("new"), tt.mode)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != tt.want {
				t.Fatalf("content = %q (%v), want %q", got, err, tt.want)
			}
			if tt.wantErr == nil {
				if fi, _ := os.Stat(path); fi.Mode().Perm() != tt.mode {
					t.Errorf("mode = %v, want %v", fi.Mode().Perm(), tt.mode)
				}
			}
			assertOnlyFile(t, dir)
		})
	}
}

func TestWriteFailedFillLeavesOldContent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(path, 0o644, func(w io.Writer) error {
		if _, err := w.Write([]byte("half")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Fatalf("content = %q, want the old one", got)
	}
	assertOnlyFile(t, dir)
}

func TestWriteFileMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "f")
	if err := WriteFile(path, []byte("x"), 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want not exist", err)
	}
}

// assertOnlyFile fails if anything but the target, such as a temporary
// file, is left in dir.
func assertOnlyFile(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "f" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("dir holds %v, want only f", names)
	}
}

func TestCopyFile(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	if err := os.WriteFile(src, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CopyFile(filepath.Join(dir, "missing"), dst, 0o755); err == nil {
		t.Fatal("no error copying a missing file")
	}
	if b, _ := os.ReadFile(dst); string(b) != "old" {
		t.Fatalf("a failed copy changed dst to %q", b)
	}
	if err := CopyFile(src, dst, 0o755); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dst)
	if b, _ := os.ReadFile(dst); err != nil || string(b) != "new" || fi.Mode().Perm() != 0o755 {
		t.Fatalf("dst %q mode %v (%v)", b, fi.Mode(), err)
	}
	if err := CopyFile(dst, dst, 0o755); err != nil {
		t.Fatalf("copy onto itself: %v", err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "new" {
		t.Fatalf("copy onto itself left %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("%d files in the directory, want src and dst only", len(entries))
	}
}
