package config

import (
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestGolden pins every generated file and argument list of a master and a
// worker; run with -update after an intended change and review the diff.
func TestGolden(t *testing.T) {
	for name, n := range map[string]Node{"master": testMaster(), "worker": testWorker()} {
		t.Run(name, func(t *testing.T) {
			a, err := generate(n)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]byte{}
			for path, data := range a.files {
				// No colons in testdata: module zips refuse them.
				got[filepath.Join("files", strings.ReplaceAll(path, ":", "_"))] = data
			}
			for comp, args := range a.args {
				got[filepath.Join("args", comp+".txt")] = []byte(strings.Join(args, "\n") + "\n")
			}
			checkGolden(t, filepath.Join("testdata", "golden", name), got)
		})
	}
}

func checkGolden(t *testing.T, dir string, got map[string][]byte) {
	t.Helper()
	if *update {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		for rel, data := range got {
			if err := writeAtomic(filepath.Join(dir, rel), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	want := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		want[rel] = data
		return err
	})
	if err != nil {
		t.Fatalf("read golden files (run with -update to create them): %v", err)
	}
	var names []string
	for rel := range got {
		names = append(names, rel)
	}
	for rel := range want {
		if _, ok := got[rel]; !ok {
			t.Errorf("%s: in testdata but no longer generated", rel)
		}
	}
	sort.Strings(names)
	for _, rel := range names {
		w, ok := want[rel]
		switch {
		case !ok:
			t.Errorf("%s: generated but not in testdata (run with -update)", rel)
		case string(w) != string(got[rel]):
			t.Errorf("%s differs from testdata (run with -update and review):\n--- got\n%s\n--- want\n%s", rel, got[rel], w)
		}
	}
}

// TestDeterministic generates twice: map order must never leak into output.
func TestDeterministic(t *testing.T) {
	for i := 0; i < 5; i++ {
		a, err := generate(testMaster())
		if err != nil {
			t.Fatal(err)
		}
		b, err := generate(testMaster())
		if err != nil {
			t.Fatal(err)
		}
		for p := range a.files {
			if string(a.files[p]) != string(b.files[p]) {
				t.Fatalf("%s differs between two runs", p)
			}
		}
		for c := range a.args {
			if strings.Join(a.args[c], " ") != strings.Join(b.args[c], " ") {
				t.Fatalf("%s args differ between two runs", c)
			}
		}
	}
}
