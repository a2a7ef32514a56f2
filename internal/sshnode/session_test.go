package sshnode

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"os/user"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opengravity/gravity/internal/access"
)

// serveSessions runs the node's session handling behind an SSH server on
// loopback that lets anyone in (authentication is tested in package
// access), and returns a client logged in as the current user.
func serveSessions(t *testing.T) *ssh.Client {
	t.Helper()
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lookup(me.Username); err != nil {
		t.Skipf("no /etc/passwd login to test with: %v", err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromSigner(key)
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := &Service{cfg: Config{Log: slog.Default()}}
	go func() {
		_ = access.Serve(ctx, ln, cfg, slog.Default(), "test", func(conn *ssh.ServerConn, nc ssh.NewChannel) { s.serve(ctx, conn, nc) })
	}()
	c, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{User: me.Username, HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSessions(t *testing.T) {
	c := serveSessions(t)
	for _, tc := range []struct {
		name, cmd, stdin string
		pty              bool
		out              string
		status           int
	}{
		{"command", "echo out; echo err >&2", "", false, "out\n", 0},
		{"exit status", "exit 3", "", false, "", 3},
		{"stdin", "tr a-z A-Z", "shout\n", false, "SHOUT\n", 0},
		{"terminal", "tty >/dev/null && echo on-a-tty", "", true, "on-a-tty\r\n", 0},
		// The terminal is the session's controlling one (job control).
		{"controlling terminal", ": </dev/tty && echo ctty", "", true, "ctty\r\n", 0},
		{"environment", `echo "$USER $PATH"`, "", false, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sess, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			if tc.pty {
				if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
					t.Fatal(err)
				}
			}
			sess.Stdin = strings.NewReader(tc.stdin)
			var stderr strings.Builder
			sess.Stderr = &stderr
			out, err := sess.Output(tc.cmd)
			var exit *ssh.ExitError
			status := 0
			if errors.As(err, &exit) {
				status = exit.ExitStatus()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tc.status {
				t.Errorf("exit status %d, want %d", status, tc.status)
			}
			if tc.name == "environment" {
				if !strings.Contains(string(out), systemPath) {
					t.Errorf("environment: %q", out)
				}
				return
			}
			if string(out) != tc.out {
				t.Errorf("output %q, want %q (stderr %q)", out, tc.out, stderr.String())
			}
			if tc.name == "command" && stderr.String() != "err\n" {
				t.Errorf("stderr %q", stderr.String())
			}
		})
	}
}

func TestLookup(t *testing.T) {
	if _, err := lookup("no-such-login-here"); err == nil || !strings.Contains(err.Error(), "no login no-such-login-here") {
		t.Errorf("lookup of a missing login: %v", err)
	}
}
