package tsh

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/term"

	"github.com/opengravity/gravity/internal/access"
	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/clusterapi"
)

// SSHOptions are `tsh ssh`'s.
type SSHOptions struct {
	// Login is the OS login on the node.
	Login string
	// Target is a node's name, host name or address, or label=value[,...].
	Target  string
	Command []string
	// TTY asks for a terminal on the node even when the local input is
	// not one (as ssh -t): the session is then recorded.
	TTY    bool
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Warn reports what the user should know (several matches, a node
	// that did not answer).
	Warn func(format string, args ...any)
}

// ExitError is a remote command's non-zero exit status.
type ExitError struct {
	Node   string
	Status int
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("command exited with status %d on %s", e.Status, e.Node)
}

// Match picks the nodes target names: a label selector (k=v, comma
// separated, all must match) or a node's name, host name or address.
func Match(nodes []clusterapi.NodeInfo, target string) ([]clusterapi.NodeInfo, error) {
	var out []clusterapi.NodeInfo
	if strings.Contains(target, "=") {
		want := map[string]string{}
		for _, kv := range strings.Split(target, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("label selector %q: want label=value[,label=value]", target)
			}
			want[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
		for _, n := range nodes {
			ok := true
			for k, v := range want {
				ok = ok && n.Labels[k] == v
			}
			if ok {
				out = append(out, n)
			}
		}
	} else {
		for _, n := range nodes {
			if n.Name == target || n.Hostname == target || n.Address == target {
				out = append(out, n)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no node matches %q (tsh ls lists the nodes and their labels)", target)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// SSH runs a shell or a command on the nodes target matches, one after
// the other; a node that fails is named and the others still run.
func (p *Profile) SSH(ctx context.Context, o SSHOptions) error {
	nodes, err := p.Nodes(ctx)
	if err != nil {
		return err
	}
	matches, err := Match(nodes, o.Target)
	if err != nil {
		return err
	}
	if len(matches) > 1 {
		if len(o.Command) == 0 {
			return fmt.Errorf("%d nodes match %q: an interactive session goes to one node; name it, or give a command to run on each", len(matches), o.Target)
		}
		names := make([]string, len(matches))
		for i, n := range matches {
			names[i] = n.Name
		}
		o.Warn("%d nodes match %q: running on each of %s", len(matches), o.Target, strings.Join(names, ", "))
	}
	client, err := p.dialProxy(o.Login)
	if err != nil {
		return err
	}
	defer client.Close()
	var errs []error
	for _, n := range matches {
		err := p.session(ctx, client, n, o)
		var exit *ExitError
		if err != nil && !errors.As(err, &exit) && len(matches) > 1 {
			o.Warn("%s: %v", n.Name, err)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// dialProxy logs in to the SSH proxy of the first master that answers,
// verified by the cluster's hosts CA.
func (p *Profile) dialProxy(login string) (*ssh.Client, error) {
	if p.Expired(time.Now()) {
		return nil, fmt.Errorf("the certificates of %s expired at %s: log in again (tsh login)", p.User, p.Expires.Local().Format(time.RFC3339))
	}
	signer, err := p.SSHSigner()
	if err != nil {
		return nil, err
	}
	hostCA, err := access.ParseAuthorizedKey(p.HostCA)
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ClientConfig{User: login, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: access.HostChecker(hostCA), Timeout: 10 * time.Second}
	var errs []error
	for _, addr := range p.proxyAddrs(p.SSHPort) {
		c, err := ssh.Dial("tcp", addr, cfg)
		if err == nil {
			return c, nil
		}
		errs = append(errs, fmt.Errorf("SSH proxy %s: %w", addr, err))
	}
	return nil, errors.Join(errs...)
}

func (p *Profile) session(ctx context.Context, client *ssh.Client, n clusterapi.NodeInfo, o SSHOptions) error {
	ch, reqs, err := client.OpenChannel(access.ChannelSession, ssh.Marshal(access.SessionRequest{Node: n.Name}))
	if err != nil {
		var open *ssh.OpenChannelError
		if errors.As(err, &open) {
			return fmt.Errorf("%s: %s", n.Name, open.Message)
		}
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	defer ch.Close()
	status := make(chan int, 1)
	go func() {
		for r := range reqs {
			if r.Type == "exit-status" && len(r.Payload) >= 4 {
				status <- int(binary.BigEndian.Uint32(r.Payload))
			}
			if r.WantReply {
				_ = r.Reply(false, nil)
			}
		}
		close(status)
	}()
	stdinFile, isFile := o.Stdin.(*os.File)
	interactive := len(o.Command) == 0
	switch {
	case interactive && isFile && term.IsTerminal(int(stdinFile.Fd())):
		restore, err := p.terminal(ch, stdinFile)
		if err != nil {
			return err
		}
		defer restore()
	case o.TTY:
		if err := requestPTY(ch, "xterm", 80, 24); err != nil {
			return err
		}
	}
	if interactive {
		if ok, err := ch.SendRequest("shell", true, nil); err != nil || !ok {
			return fmt.Errorf("%s: the node refused a shell", n.Name)
		}
	} else {
		cmd := strings.Join(o.Command, " ")
		if ok, err := ch.SendRequest("exec", true, ssh.Marshal(struct{ Command string }{cmd})); err != nil || !ok {
			return fmt.Errorf("%s: the node refused to run %q", n.Name, cmd)
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(o.Stdout, ch)
	}()
	go func() {
		defer wg.Done()
		_, _ = io.Copy(o.Stderr, ch.Stderr())
	}()
	if o.Stdin != nil {
		go func() {
			_, _ = io.Copy(ch, o.Stdin)
			_ = ch.CloseWrite()
		}()
	} else {
		_ = ch.CloseWrite()
	}
	wg.Wait()
	select {
	case st, ok := <-status:
		if ok && st != 0 {
			return &ExitError{Node: n.Name, Status: st}
		}
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(5 * time.Second):
	}
	return nil
}

// terminal asks the node for one the size of the local one, puts the
// local one in raw mode, and follows its size.
func (p *Profile) terminal(ch ssh.Channel, stdin *os.File) (func(), error) {
	fd := int(stdin.Fd())
	w, h, err := term.GetSize(fd)
	if err != nil {
		w, h = 80, 24
	}
	termName := os.Getenv("TERM")
	if termName == "" {
		termName = "xterm"
	}
	if err := requestPTY(ch, termName, w, h); err != nil {
		return nil, err
	}
	state, err := term.MakeRaw(fd)
	if err != nil {
		return nil, err
	}
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-winch:
				if w, h, err := term.GetSize(fd); err == nil {
					_, _ = ch.SendRequest("window-change", false, ssh.Marshal(struct{ Columns, Rows, Width, Height uint32 }{uint32(w), uint32(h), 0, 0}))
				}
			}
		}
	}()
	return func() {
		signal.Stop(winch)
		close(done)
		_ = term.Restore(fd, state)
	}, nil
}

func requestPTY(ch ssh.Channel, termName string, w, h int) error {
	req := struct {
		Term          string
		Columns, Rows uint32
		Width, Height uint32
		Modes         string
	}{termName, uint32(w), uint32(h), 0, 0, string([]byte{0})}
	if ok, err := ch.SendRequest("pty-req", true, ssh.Marshal(req)); err != nil || !ok {
		return errors.New("the node refused a terminal")
	}
	return nil
}

// Recordings lists the recorded sessions.
func (p *Profile) Recordings(ctx context.Context) ([]cluster.Recording, error) {
	var out []cluster.Recording
	err := p.api(ctx, http.MethodGet, clusterapi.PathRecordings, nil, &out)
	return out, err
}

// Play writes a recorded session's output to w as it came, each pause cut
// to maxPause.
func (p *Profile) Play(ctx context.Context, id string, w io.Writer, maxPause time.Duration) error {
	var rec cluster.Recording
	if err := p.api(ctx, http.MethodGet, clusterapi.PathRecordings+"/"+id, nil, &rec); err != nil {
		return err
	}
	var last int64
	for _, f := range rec.Frames {
		if d := time.Duration(f.Offset-last) * time.Millisecond; d > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(min(d, maxPause)):
			}
		}
		last = f.Offset
		if _, err := w.Write(f.Data); err != nil {
			return err
		}
	}
	if rec.Truncated {
		fmt.Fprintf(w, "\r\n[the rest of session %s was not recorded: it wrote more than %d KiB]\r\n", id, cluster.MaxRecording>>10)
	}
	return nil
}

// Copy copies one file between here and one node, through the proxy as
// `tsh ssh` does: src or dst is [login@]node:path, the other a local path.
// The node's side runs cat with the path quoted for its shell, so the
// file's mode is not carried over (new files get the login's umask).
func (p *Profile) Copy(ctx context.Context, login, src, dst string, warn func(string, ...any)) error {
	remote, upload := dst, true
	if r, ok := remotePath(src); ok {
		remote, upload = r, false
		if _, ok := remotePath(dst); ok {
			return errors.New("tsh scp copies between here and a node, not between nodes")
		}
	} else if _, ok := remotePath(dst); !ok {
		return errors.New("tsh scp: one side must be [login@]node:path")
	}
	target, path, _ := strings.Cut(remote, ":")
	if l, t, ok := strings.Cut(target, "@"); ok {
		login, target = l, t
	}
	if path == "" {
		return errors.New("tsh scp: the node's path is empty")
	}
	o := SSHOptions{Login: login, Target: target, Stderr: os.Stderr, Warn: warn}
	if upload {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		o.Stdin, o.Stdout, o.Command = f, io.Discard, []string{"cat > " + shellQuote(path)}
		return p.copyOne(ctx, o)
	}
	f, err := os.CreateTemp(filepath.Dir(dst), ".tsh-scp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	o.Stdout, o.Command = f, []string{"cat " + shellQuote(path)}
	err = p.copyOne(ctx, o)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), dst)
}

// copyOne runs a copy on exactly one node.
func (p *Profile) copyOne(ctx context.Context, o SSHOptions) error {
	nodes, err := p.Nodes(ctx)
	if err != nil {
		return err
	}
	matches, err := Match(nodes, o.Target)
	if err != nil {
		return err
	}
	if len(matches) != 1 {
		return fmt.Errorf("%d nodes match %q: tsh scp copies to or from one node", len(matches), o.Target)
	}
	return p.SSH(ctx, o)
}

func remotePath(s string) (string, bool) {
	i := strings.Index(s, ":")
	// A local path may hold a colon after a slash (./a:b).
	if i <= 0 || strings.Contains(s[:i], "/") {
		return "", false
	}
	return s, true
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
