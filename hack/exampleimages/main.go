// Command exampleimages builds runnable stand-ins for the images the Gravity
// 101 walkthrough uses (alpine:3.3, alpine:3.4,
// quay.io/gravitational/debian-tall:stretch), which cannot be pulled on an
// air-gapped build machine. Each is one layer holding Debian's static busybox
// (so /bin/sh and /bin/sleep work) and an os-release naming the stand-in,
// written as an OCI archive for `tele image load`. Output is deterministic.
package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

var images = []struct{ ref, prettyName string }{
	{"alpine:3.3", "Alpine Linux v3.3 (gravity example stand-in)"},
	{"alpine:3.4", "Alpine Linux v3.4 (gravity example stand-in)"},
	{"quay.io/gravitational/debian-tall:stretch", "debian-tall stretch (gravity example stand-in)"},
}

// applets are the busybox commands linked into /bin; the seed's pod runs
// /bin/sleep and hooks need a shell.
var applets = []string{"sh", "sleep", "ls", "cat", "echo", "env", "ps", "wget", "nslookup", "true", "false", "mkdir", "rm", "cp", "mv", "grep", "sed", "tar", "gzip", "id", "hostname", "date"}

func main() {
	busybox := flag.String("busybox", "/bin/busybox", "static busybox binary (Debian package busybox-static)")
	out := flag.String("out", "build/example-images", "directory for the OCI archives")
	flag.Parse()
	if err := run(*busybox, *out); err != nil {
		fmt.Fprintln(os.Stderr, "exampleimages:", err)
		os.Exit(1)
	}
}

func run(busybox, out string) error {
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return fmt.Errorf("%w (install Debian's busybox-static: apt-get install busybox-static)", err)
	}
	if err := checkStatic(busybox); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, img := range images {
		file := filepath.Join(out, strings.NewReplacer("/", "_", ":", "_").Replace(img.ref)+".oci.tar")
		if err := writeImage(file, img.ref, img.prettyName, bin); err != nil {
			return fmt.Errorf("%s: %w", img.ref, err)
		}
		fmt.Println(file)
	}
	return nil
}

func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: not an ELF binary: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; the images have no libc (install busybox-static)", path)
		}
	}
	return nil
}

func writeImage(file, ref, prettyName string, busybox []byte) error {
	layerTar, err := rootfs(prettyName, busybox)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromReader(bytes.NewReader(layerTar))
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: "amd64", OS: "linux", Created: v1.Time{Time: time.Unix(0, 0).UTC()},
		Config: v1.Config{Cmd: []string{"/bin/sh"}, Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}},
		RootFS: mustConfig(img).RootFS,
	})
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(filepath.Dir(file), ".layout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
		return err
	}
	return tarDir(dir, file)
}

func mustConfig(img v1.Image) *v1.ConfigFile {
	cf, err := img.ConfigFile()
	if err != nil {
		panic(err)
	}
	return cf
}

func rootfs(prettyName string, busybox []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0).UTC()
	dirs := []string{"bin/", "etc/", "tmp/", "usr/", "usr/local/", "usr/local/bin/", "var/", "var/lib/"}
	for _, d := range dirs {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: mode, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"bin/busybox", 0o755, busybox},
		{"etc/os-release", 0o644, []byte("PRETTY_NAME=\"" + prettyName + "\"\n")},
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")},
		{"etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: f.mode, Size: int64(len(f.data)), ModTime: epoch}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	for _, a := range applets {
		if err := tw.WriteHeader(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777, ModTime: epoch}); err != nil {
			return nil, err
		}
	}
	err := tw.Close()
	return buf.Bytes(), err
}

// tarDir writes dir as an OCI archive: sorted entries, fixed metadata, written
// to a temp file and renamed so an interrupted run leaves nothing.
func tarDir(dir, file string) error {
	var names []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		names = append(names, rel)
		return err
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	tmp, err := os.CreateTemp(filepath.Dir(file), ".archive-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	tw := tar.NewWriter(tmp)
	for _, name := range names {
		if err := addFile(tw, dir, name); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

func addFile(tw *tar.Writer, dir, name string) error {
	p := filepath.Join(dir, name)
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: filepath.ToSlash(name), ModTime: time.Unix(0, 0).UTC(), Mode: 0o644}
	if fi.IsDir() {
		hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, hdr.Name+"/", 0o755
		return tw.WriteHeader(hdr)
	}
	hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}
