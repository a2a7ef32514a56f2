package node

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNotify(t *testing.T) {
	for _, tc := range []struct {
		name, socket string
	}{
		{"path", filepath.Join(t.TempDir(), "notify")},
		{"abstract", fmt.Sprintf("@gravity-notify-test-%d", os.Getpid())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: tc.socket, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			t.Setenv(notifySocketEnv, tc.socket)
			n := notifierFromEnv()
			if v, ok := os.LookupEnv(notifySocketEnv); ok {
				t.Errorf("%s=%q left for the supervised processes", notifySocketEnv, v)
			}
			if err := n.notify("READY=1\nSTATUS=running"); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 256)
			_ = ln.SetReadDeadline(time.Now().Add(5 * time.Second))
			k, err := ln.Read(buf)
			if err != nil || string(buf[:k]) != "READY=1\nSTATUS=running" {
				t.Errorf("got %q, %v", buf[:k], err)
			}
		})
	}
}

func TestNotifyWithoutSystemd(t *testing.T) {
	t.Setenv(notifySocketEnv, "")
	if err := notifierFromEnv().notify("READY=1"); err != nil {
		t.Errorf("no socket: %v", err)
	}
	err := notifier{socket: "vsock:2:1234"}.notify("READY=1")
	if err == nil || !strings.Contains(err.Error(), "unsupported") {
		t.Errorf("vsock: err = %v", err)
	}
	err = notifier{socket: filepath.Join(t.TempDir(), "none")}.notify("READY=1")
	if err == nil {
		t.Error("no listener: no error")
	}
}
