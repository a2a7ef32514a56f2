package sshnode

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/creack/pty"
	"golang.org/x/crypto/ssh"
)

// systemPath is the PATH of sessions: gravity, kubectl and helm are on it.
const systemPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// session is one SSH session channel: a shell or a command, with a
// terminal when the client asked for one.
type session struct {
	ctx   context.Context
	log   *slog.Logger
	login string
	ch    ssh.Channel
	env   []string
	pty   *ptyRequest
	mu    sync.Mutex
	tty   *os.File
	cmd   *exec.Cmd
	// done: cmd was waited for.
	done bool
}

type ptyRequest struct {
	Term          string
	Columns, Rows uint32
	Width, Height uint32
	Modes         string
}

func newSession(ctx context.Context, log *slog.Logger, login string, ch ssh.Channel) *session {
	return &session{ctx: ctx, log: log, login: login, ch: ch}
}

func (s *session) serve(reqs <-chan *ssh.Request) {
	defer s.ch.Close()
	// The channel closed: a command or shell still running has lost its
	// client (as sshd, a hangup); one that ended is not signalled again.
	defer s.hangup()
	for r := range reqs {
		ok := true
		switch r.Type {
		case "pty-req":
			var p ptyRequest
			if ssh.Unmarshal(r.Payload, &p) != nil {
				ok = false
				break
			}
			s.pty = &p
		case "env":
			var kv struct{ Name, Value string }
			if ssh.Unmarshal(r.Payload, &kv) != nil || !allowedEnv(kv.Name) {
				ok = false
				break
			}
			s.env = append(s.env, kv.Name+"="+kv.Value)
		case "window-change":
			var wc struct{ Columns, Rows, Width, Height uint32 }
			if ssh.Unmarshal(r.Payload, &wc) == nil {
				s.resize(wc.Columns, wc.Rows)
			}
		case "shell", "exec":
			var command string
			if r.Type == "exec" {
				var c struct{ Command string }
				if ssh.Unmarshal(r.Payload, &c) != nil {
					ok = false
					break
				}
				command = c.Command
			}
			if r.WantReply {
				_ = r.Reply(true, nil)
			}
			go s.run(command)
			continue
		case "signal":
			var sig struct{ Signal string }
			if ssh.Unmarshal(r.Payload, &sig) == nil {
				s.signal(sig.Signal)
			}
		default:
			ok = false
		}
		if r.WantReply {
			_ = r.Reply(ok, nil)
		}
	}
}

// allowedEnv: the terminal's and the locale's, as sshd's AcceptEnv.
func allowedEnv(name string) bool {
	return name == "TERM" || name == "LANG" || strings.HasPrefix(name, "LC_")
}

func (s *session) resize(cols, rows uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tty != nil {
		_ = pty.Setsize(s.tty, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)})
	} else if s.pty != nil {
		s.pty.Columns, s.pty.Rows = cols, rows
	}
}

func (s *session) signal(name string) {
	sig := map[string]syscall.Signal{"INT": syscall.SIGINT, "TERM": syscall.SIGTERM, "KILL": syscall.SIGKILL, "HUP": syscall.SIGHUP, "QUIT": syscall.SIGQUIT}[name]
	s.mu.Lock()
	defer s.mu.Unlock()
	if sig != 0 && s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

func (s *session) hangup() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil && s.cmd.Process != nil && !s.done {
		_ = s.cmd.Process.Signal(syscall.SIGHUP)
	}
}

// run starts the login's shell, or command through it, and reports its
// exit status.
func (s *session) run(command string) {
	status, err := s.start(command)
	if err != nil {
		fmt.Fprintf(s.ch.Stderr(), "%v\r\n", err)
		status = 255
	}
	_, _ = s.ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, uint32(status)))
	s.ch.Close()
}

func (s *session) start(command string) (int, error) {
	acct, err := lookup(s.login)
	if err != nil {
		return 0, err
	}
	args := []string{"-l"}
	if command != "" {
		args = []string{"-c", command}
	}
	cmd := exec.CommandContext(s.ctx, acct.shell, args...)
	cmd.Dir = acct.home
	cmd.Env = append([]string{"HOME=" + acct.home, "USER=" + s.login, "LOGNAME=" + s.login, "SHELL=" + acct.shell, "PATH=" + systemPath}, s.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if acct.uid != 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: acct.uid, Gid: acct.gid}
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	if s.pty != nil {
		cmd.Env = append(cmd.Env, "TERM="+s.pty.Term)
		// A session of its own whose controlling terminal is the pty:
		// job control, ^C and hangups work as on a login.
		cmd.SysProcAttr.Setsid, cmd.SysProcAttr.Setctty = true, true
		tty, err := pty.StartWithAttrs(cmd, &pty.Winsize{Cols: uint16(s.pty.Columns), Rows: uint16(s.pty.Rows)}, cmd.SysProcAttr)
		if err != nil {
			return 0, fmt.Errorf("starting %s on a terminal: %w", acct.shell, err)
		}
		s.mu.Lock()
		s.tty = tty
		s.mu.Unlock()
		go func() { _, _ = io.Copy(tty, s.ch) }()
		_, _ = io.Copy(s.ch, tty) // until the shell and its children close the terminal
		tty.Close()
	} else {
		cmd.Stdout, cmd.Stderr = s.ch, s.ch.Stderr()
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return 0, err
		}
		if err := cmd.Start(); err != nil {
			return 0, fmt.Errorf("starting %s: %w", acct.shell, err)
		}
		go func() {
			_, _ = io.Copy(stdin, s.ch)
			stdin.Close()
		}()
	}
	err = cmd.Wait()
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return exit.ExitCode(), nil
	}
	if err != nil {
		return 0, err
	}
	return 0, nil
}

// account is a login's entry of /etc/passwd.
type account struct {
	uid, gid    uint32
	home, shell string
}

// lookup reads /etc/passwd, as the node's own logins are: the binary is
// static, without libc's resolver.
func lookup(login string) (account, error) {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return account{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 7 || fields[0] != login {
			continue
		}
		uid, err1 := strconv.ParseUint(fields[2], 10, 32)
		gid, err2 := strconv.ParseUint(fields[3], 10, 32)
		if err := errors.Join(err1, err2); err != nil {
			return account{}, fmt.Errorf("/etc/passwd entry of %s: %w", login, err)
		}
		a := account{uid: uint32(uid), gid: uint32(gid), home: fields[5], shell: fields[6]}
		if a.shell == "" || strings.HasSuffix(a.shell, "nologin") || strings.HasSuffix(a.shell, "false") {
			return account{}, fmt.Errorf("login %s has no shell on this node", login)
		}
		if a.home == "" {
			a.home = "/"
		}
		return a, nil
	}
	if err := sc.Err(); err != nil {
		return account{}, err
	}
	return account{}, fmt.Errorf("no login %s on this node", login)
}
