package config

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDetectSnapshotterTable(t *testing.T) {
	tmp := t.TempDir()
	withOverlay := writeFile(t, tmp, "fs-overlay", "nodev\tsysfs\nnodev\toverlay\n\text4\n")
	without := writeFile(t, tmp, "fs-none", "nodev\tsysfs\n\text4\n")
	modOverlay := writeFile(t, tmp, "modules.dep", "kernel/fs/overlayfs/overlay.ko.zst:\nkernel/fs/nfs/nfs.ko:\n")
	modNone := writeFile(t, tmp, "modules.none", "kernel/fs/nfs/nfs.ko:\n")
	state := filepath.Join(tmp, "not", "yet", "created")
	fsType := func(magic int64, err error) func(string) (int64, error) {
		return func(dir string) (int64, error) {
			if dir != tmp {
				t.Errorf("statfs %s, want the nearest existing ancestor %s", dir, tmp)
			}
			return magic, err
		}
	}
	tests := []struct {
		name          string
		fsType        func(string) (int64, error)
		filesystems   string
		modules       string
		want, because string
	}{
		{"ext4", fsType(0xef53, nil), withOverlay, "", SnapshotterOverlay, "supports overlayfs"},
		{"tmpfs", fsType(0x01021994, nil), withOverlay, "", SnapshotterOverlay, "supports overlayfs"},
		{"on overlay", fsType(overlayMagic, nil), withOverlay, "", SnapshotterNative, "is on overlayfs"},
		{"on nfs", fsType(nfsMagic, nil), withOverlay, "", SnapshotterNative, "NFS"},
		{"statfs fails", fsType(0, errors.New("boom")), withOverlay, "", SnapshotterNative, "boom"},
		{"overlay as a module", fsType(0xef53, nil), without, modOverlay, SnapshotterOverlay, "supports"},
		{"no overlay", fsType(0xef53, nil), without, modNone, SnapshotterNative, "no overlayfs"},
		{"no module list", fsType(0xef53, nil), without, filepath.Join(tmp, "missing"), SnapshotterNative, "no overlayfs"},
		{"no /proc", fsType(0xef53, nil), filepath.Join(tmp, "missing"), "", SnapshotterNative, "cannot tell"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := detectSnapshotter(state, tc.fsType, tc.filesystems, tc.modules)
			if got != tc.want || !strings.Contains(reason, tc.because) {
				t.Errorf("got %s (%s), want %s (%s)", got, reason, tc.want, tc.because)
			}
		})
	}
}

// TestDetectSnapshotterTmpfs runs the real detector on the test's temporary
// directory, which is not on overlayfs on the machines this project uses.
func TestDetectSnapshotterTmpfs(t *testing.T) {
	dir := t.TempDir()
	if typ, err := statfsType(dir); err != nil || typ == overlayMagic {
		t.Skipf("temporary directory is on overlayfs or unreadable (%v)", err)
	}
	if name, reason := DetectSnapshotter(filepath.Join(dir, "state")); name != SnapshotterOverlay {
		t.Errorf("got %s (%s), want overlayfs", name, reason)
	}
}

const overlayHelperEnv = "GRAVITY_CONFIG_OVERLAY_HELPER"

// TestDetectSnapshotterOverlayMount mounts a real overlay in a private mount
// namespace of a child process (which takes the mounts with it when it
// exits) and detects from a state directory inside it.
func TestDetectSnapshotterOverlayMount(t *testing.T) {
	if dir := os.Getenv(overlayHelperEnv); dir != "" {
		overlayHelper(t, dir)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDetectSnapshotterOverlayMount$", "-test.v")
	dir := t.TempDir()
	cmd.Env = append(os.Environ(), overlayHelperEnv+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	if strings.Contains(string(out), "SKIP:") {
		t.Skipf("helper skipped:\n%s", out)
	}
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	for _, want := range []string{"TMPFS overlayfs", "OVERLAY native"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("helper output lacks %q:\n%s", want, out)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), dir) {
		t.Errorf("the helper's mounts leaked into the test's namespace")
	}
}

func overlayHelper(t *testing.T, dir string) {
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=16m"); err != nil {
		t.Logf("SKIP: cannot mount tmpfs: %v", err)
		return
	}
	name, reason := DetectSnapshotter(filepath.Join(dir, "state"))
	t.Logf("TMPFS %s: %s", name, reason)
	lower, upper, work, merged := filepath.Join(dir, "l"), filepath.Join(dir, "u"), filepath.Join(dir, "w"), filepath.Join(dir, "m")
	for _, d := range []string{lower, upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := syscall.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Logf("SKIP: cannot mount overlay: %v", err)
		return
	}
	name, reason = DetectSnapshotter(filepath.Join(merged, "var", "lib", "gravity"))
	t.Logf("OVERLAY %s: %s", name, reason)
}
