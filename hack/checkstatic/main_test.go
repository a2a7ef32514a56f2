package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// minimalELF is a little-endian x86-64 executable with one program header:
// PT_INTERP naming interp, or PT_LOAD when interp is empty.
func minimalELF(interp string) []byte {
	const ehsize, phsize = 64, 56
	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0})
	b.Write(make([]byte, 8))
	for _, v := range []any{
		uint16(2), uint16(62), uint32(1), // ET_EXEC, EM_X86_64, EV_CURRENT
		uint64(0x400000), uint64(ehsize), uint64(0), // entry, phoff, shoff
		uint32(0), uint16(ehsize), uint16(phsize), uint16(1), // flags, ehsize, phentsize, phnum
		uint16(64), uint16(0), uint16(0), // shentsize, shnum, shstrndx
	} {
		binary.Write(&b, le, v)
	}
	typ, data := uint32(1), []byte{} // PT_LOAD
	if interp != "" {
		typ, data = 3, append([]byte(interp), 0) // PT_INTERP
	}
	off := uint64(ehsize + phsize)
	for _, v := range []any{
		typ, uint32(4), off, uint64(0x400000) + off, uint64(0x400000) + off,
		uint64(len(data)), uint64(len(data)), uint64(1),
	} {
		binary.Write(&b, le, v)
	}
	b.Write(data)
	return b.Bytes()
}

func TestCheckELF(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want string // substring of the error; empty for static
	}{
		{"static", minimalELF(""), ""},
		{"dynamic", minimalELF("/lib64/ld-linux-x86-64.so.2"), `interpreter "/lib64/ld-linux-x86-64.so.2"`},
		{"shell script", []byte("#!/bin/sh\necho hi\n"), "not an ELF binary"},
		{"empty", nil, "not an ELF binary"},
		{"truncated header", minimalELF("")[:40], "not an ELF binary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkELF(bytes.NewReader(tc.data))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("checkELF: %v, want static", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("checkELF: %v, want error containing %q", err, tc.want)
			}
		})
	}
}

// A real dynamic binary from the host, where there is one.
func TestCheckELFHostDynamic(t *testing.T) {
	f, err := os.Open("/bin/sh")
	if err != nil {
		t.Skipf("no /bin/sh: %v", err)
	}
	defer f.Close()
	if err := checkELF(f); err == nil {
		t.Skip("/bin/sh is static here")
	} else if !strings.Contains(err.Error(), "interpreter") {
		t.Fatalf("checkELF(/bin/sh): %v, want an interpreter", err)
	}
}

func TestCollectAndCheckAll(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("good", minimalELF(""))
	write(".good.tmp", minimalELF("/lib/ld.so")) // a build temporary: not shipped
	if err := os.Symlink("good", filepath.Join(dir, "alias")); err != nil {
		t.Fatal(err)
	}
	files, err := collect([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || filepath.Base(files[0]) != "good" {
		t.Fatalf("collect = %v, want only good", files)
	}
	var out bytes.Buffer
	if err := checkAll(files, &out); err != nil {
		t.Fatalf("checkAll: %v", err)
	}

	write("bad", minimalELF("/lib/ld.so"))
	write("worse", []byte("not elf"))
	files, err = collect([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	err = checkAll(files, &out)
	if err == nil || !strings.Contains(err.Error(), "2 of 3 not static") ||
		!strings.Contains(err.Error(), "bad: has an ELF interpreter") {
		t.Fatalf("checkAll: %v, want bad and worse reported", err)
	}
}

func TestCollectEmpty(t *testing.T) {
	if _, err := collect([]string{t.TempDir()}); err == nil {
		t.Fatal("collect of an empty directory succeeded; an empty bin/ must not pass")
	}
	if _, err := collect([]string{filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Fatal("collect of a missing path succeeded")
	}
}

func FuzzCheckELF(f *testing.F) {
	f.Add(minimalELF(""))
	f.Add(minimalELF("/lib64/ld-linux-x86-64.so.2"))
	f.Add([]byte("\x7fELF"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Any input gets an answer, never a panic; and "static" must mean
		// a parsable ELF file without an interpreter.
		if checkELF(bytes.NewReader(data)) != nil {
			return
		}
		ef, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("static but unparsable: %v", err)
		}
		for _, p := range ef.Progs {
			if p.Type == elf.PT_INTERP {
				t.Fatal("static but has PT_INTERP")
			}
		}
	})
}
