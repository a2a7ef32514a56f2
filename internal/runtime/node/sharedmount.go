package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/opengravity/gravity/internal/mountinfo"
)

// ShareMount makes sure mounts made below dir in another mount namespace
// show in this one: kubelet runs in a mount namespace of its own
// (ExecWithKernelView), and the secret and token volumes it mounts there
// must reach containerd, which starts the containers from this one. Where
// dir's mount is not shared (a host without systemd, whose / is private),
// dir is bind-mounted onto itself and that mount made shared; the rest of
// the host's mounts stay as they are.
func ShareMount(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("share %s: %w", dir, err)
	}
	entries, err := mountinfo.Parse(string(data))
	if err != nil {
		return fmt.Errorf("share %s: %w", dir, err)
	}
	bind, share := sharePlan(entries, dir)
	if bind {
		if err := unix.Mount(dir, dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mounting %s onto itself: %w", dir, err)
		}
	}
	if share {
		if err := unix.Mount("", dir, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("making %s a shared mount: %w", dir, err)
		}
	}
	return nil
}

// sharePlan says what ShareMount must do for dir given the mount table:
// nothing when the mount holding dir is shared; make it shared when dir is
// that mount's point; otherwise bind dir first, so that only dir, not the
// mount around it, changes propagation.
func sharePlan(entries []mountinfo.Entry, dir string) (bind, share bool) {
	dir = filepath.Clean(dir)
	var holder *mountinfo.Entry
	for i, e := range entries {
		// The last of stacked mounts is the visible one, and the longest
		// point holding dir the innermost.
		if within(dir, e.Point) && (holder == nil || len(e.Point) >= len(holder.Point)) {
			holder = &entries[i]
		}
	}
	switch {
	case holder != nil && holder.Shared:
		return false, false
	case holder != nil && holder.Point == dir:
		return false, true
	default:
		return true, true
	}
}

func within(path, point string) bool {
	return path == point || point == "/" || strings.HasPrefix(path, point+"/")
}
