// Command checkstatic fails unless every binary in the given files and
// directories is statically linked: no ELF interpreter (PT_INTERP) and no
// shared library dependencies (DT_NEEDED). Hooks run the runtime's binaries
// in images without libc, where a dynamic binary fails with a bare
// "no such file or directory".
package main

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: checkstatic FILE|DIR...")
		os.Exit(2)
	}
	files, err := collect(os.Args[1:])
	if err == nil {
		err = checkAll(files, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "checkstatic:", err)
		os.Exit(1)
	}
}

// collect lists the regular files named or found directly in the named
// directories. Symlinks are skipped (their targets are checked themselves),
// and so are dot files, which are a build's temporaries.
func collect(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("stat: %w", err)
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", p, err)
		}
		for _, e := range entries {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				files = append(files, filepath.Join(p, e.Name()))
			}
		}
	}
	if len(files) == 0 {
		return nil, errors.New("no binaries to check")
	}
	sort.Strings(files)
	return files, nil
}

// checkAll checks every file and reports all failures at once.
func checkAll(files []string, out io.Writer) error {
	var bad []string
	for _, f := range files {
		if err := checkFile(f); err != nil {
			bad = append(bad, err.Error())
			continue
		}
		fmt.Fprintf(out, "static: %s\n", f)
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d of %d not static:\n  %s", len(bad), len(files), strings.Join(bad, "\n  "))
	}
	return nil
}

func checkFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer f.Close()
	if err := checkELF(f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// checkELF returns why the ELF file in r is not static, or nil.
func checkELF(r io.ReaderAt) error {
	ef, err := elf.NewFile(r)
	if err != nil {
		return fmt.Errorf("not an ELF binary: %w", err)
	}
	defer ef.Close()
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			interp, _ := io.ReadAll(io.LimitReader(p.Open(), 256))
			return fmt.Errorf("has an ELF interpreter %q", strings.TrimRight(string(interp), "\x00"))
		}
	}
	libs, err := ef.ImportedLibraries()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return fmt.Errorf("read dynamic section: %w", err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("needs shared libraries %s", strings.Join(libs, ", "))
	}
	return nil
}
