package node

import (
	"fmt"
	"net"
	"os"
)

// notifySocketEnv names the datagram socket systemd listens on for a
// Type=notify service's state (sd_notify(3)).
const notifySocketEnv = "NOTIFY_SOCKET"

// notifier sends sd_notify(3) messages; with no socket (not started by
// systemd) it sends nothing.
type notifier struct{ socket string }

// notifierFromEnv takes NOTIFY_SOCKET out of the environment, as
// sd_notify's unset_environment does: the supervised processes inherit our
// environment, and etcd and containerd would otherwise send their own
// READY=1, which systemd rejects from them (NotifyAccess=main) or, worse,
// takes for ours.
func notifierFromEnv() notifier {
	n := notifier{socket: os.Getenv(notifySocketEnv)}
	os.Unsetenv(notifySocketEnv)
	return n
}

// notify sends state ("READY=1", "STOPPING=1", "STATUS=...") in one
// datagram. An abstract socket ("@name") works as is: Go maps the @.
func (n notifier) notify(state string) error {
	if n.socket == "" {
		return nil
	}
	if n.socket[0] != '/' && n.socket[0] != '@' {
		return fmt.Errorf("sd_notify: unsupported %s=%q", notifySocketEnv, n.socket)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}
