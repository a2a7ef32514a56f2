package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const (
	defaultRetry = time.Second
	maxRetry     = 30 * time.Second
	// waitDelay bounds how long a finished command's output is drained when
	// something that escaped the process group still holds its pipes.
	waitDelay = 5 * time.Second
)

// AgentConfig configures the node's end of the protocol.
type AgentConfig struct {
	// Addr is the installer's host:port.
	Addr string
	// TLS holds the client certificate, RootCAs and ServerName.
	TLS   *tls.Config
	Token string
	Info  NodeInfo
	Log   *slog.Logger
	// Retry is the first delay before reconnecting; it doubles up to 30s.
	Retry time.Duration
}

// RunAgent connects to the installer and runs the commands it sends until ctx
// is cancelled, reconnecting with backoff whenever the connection drops.
// It returns nil once ctx is cancelled, and an error only when retrying
// cannot help: the token is refused or another agent took this node's place.
func RunAgent(ctx context.Context, cfg AgentConfig) error {
	if cfg.Addr == "" || cfg.TLS == nil || cfg.Token == "" || cfg.Info.AdvertiseIP == "" {
		return errors.New("install agent: address, TLS, token and advertise IP are all required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Retry <= 0 {
		cfg.Retry = defaultRetry
	}
	a := &agent{cfg: cfg, log: cfg.Log.With("component", "install-agent", "installer", cfg.Addr)}
	delay := cfg.Retry
	for {
		welcomed, err := a.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		switch status.Code(err) {
		case codes.Unauthenticated, codes.Aborted, codes.InvalidArgument:
			return fmt.Errorf("install agent: installer %s refused this node: %w", cfg.Addr, err)
		}
		if welcomed {
			delay = cfg.Retry
		}
		// Jitter keeps a fleet of agents from reconnecting in lockstep
		// when the installer comes back.
		wait := delay/2 + rand.N(delay/2+1)
		a.log.Warn("connection to installer lost, retrying", "error", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		delay = min(2*delay, maxRetry)
	}
}

type agent struct {
	cfg AgentConfig
	log *slog.Logger
}

// session holds one connection until it fails, running every command it
// receives; the commands are killed when it ends because nobody is left to
// read their output, and a resumed installer re-runs unfinished phases.
func (a *agent) session(ctx context.Context) (welcomed bool, err error) {
	// A fresh connection per session puts reconnection under our backoff
	// instead of gRPC's internal one, which can wait up to two minutes.
	conn, err := grpc.NewClient(a.cfg.Addr,
		grpc.WithTransportCredentials(credentials.NewTLS(a.cfg.TLS.Clone())),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: keepaliveTime, Timeout: keepaliveTimeout, PermitWithoutStream: true}),
		grpc.WithDefaultCallOptions(grpc.CallContentSubtype(codecName),
			grpc.MaxCallRecvMsgSize(maxMessage), grpc.MaxCallSendMsgSize(maxMessage)))
	if err != nil {
		return false, fmt.Errorf("dial installer: %w", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, tokenHeader, a.cfg.Token)
	stream, err := conn.NewStream(ctx, &serviceDesc.Streams[0], connectMethod)
	if err != nil {
		return false, fmt.Errorf("open stream: %w", err)
	}
	s := &sender{stream: stream}
	if err := s.send(&agentMsg{Hello: &a.cfg.Info}); err != nil {
		return false, fmt.Errorf("send hello: %w", err)
	}
	var first serverMsg
	if err := stream.RecvMsg(&first); err != nil {
		return false, fmt.Errorf("wait for welcome: %w", err)
	}
	if !first.Welcome {
		return false, errors.New("installer did not welcome this agent")
	}
	a.log.Info("connected to installer")
	var wg sync.WaitGroup
	err = a.serve(ctx, stream, s, &wg)
	// Kill this session's commands and wait for them, so none outlives
	// the session or reports on a stream that is gone.
	cancel()
	wg.Wait()
	return true, err
}

// serve receives commands until the stream fails.
func (a *agent) serve(ctx context.Context, stream grpc.ClientStream, s *sender, wg *sync.WaitGroup) error {
	var mu sync.Mutex
	cancels := make(map[uint64]context.CancelFunc)
	for {
		var m serverMsg
		if err := stream.RecvMsg(&m); err != nil {
			return fmt.Errorf("receive from installer: %w", err)
		}
		switch {
		case m.Run != nil:
			cctx, ccancel := context.WithCancel(ctx)
			mu.Lock()
			cancels[m.Run.ID] = ccancel
			mu.Unlock()
			wg.Add(1)
			go func(r *runMsg) {
				defer wg.Done()
				a.execute(cctx, s, r)
				mu.Lock()
				delete(cancels, r.ID)
				mu.Unlock()
				ccancel()
			}(m.Run)
		case m.Cancel != nil:
			mu.Lock()
			if c := cancels[m.Cancel.ID]; c != nil {
				c()
			}
			mu.Unlock()
		}
	}
}

// execute runs one command and reports its output and exit.
func (a *agent) execute(ctx context.Context, s *sender, r *runMsg) {
	log := a.log.With("id", r.ID, "args", r.Args)
	exit := exitMsg{ID: r.ID, Code: -1}
	if len(r.Args) == 0 {
		exit.Error = "empty command"
		s.sendQuiet(log, &agentMsg{Exit: &exit})
		return
	}
	name := r.Args[0]
	if name == SelfExecutable {
		// The agent's own binary even once its file is gone: rolling back
		// an install removes the installed gravity while it runs.
		name = "/proc/self/exe"
	}
	cmd := exec.CommandContext(ctx, name, r.Args[1:]...)
	cmd.Env = append(os.Environ(), r.Env...)
	if r.Stdin != nil {
		cmd.Stdin = bytes.NewReader(r.Stdin)
	}
	cmd.Stdout = &chunkWriter{id: r.ID, stream: streamStdout, s: s}
	cmd.Stderr = &chunkWriter{id: r.ID, stream: streamStderr, s: s}
	// Its own process group lets a cancel kill everything the command
	// started, not just the direct child.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	log.Info("running command")
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		exit.Error = fmt.Sprintf("killed: %v", context.Cause(ctx))
	case errors.As(err, &exitErr):
		exit.Code = exitErr.ExitCode()
		if exit.Code < 0 {
			exit.Error = exitErr.String() // e.g. "signal: killed"
		}
	case err != nil:
		exit.Error = err.Error()
	default:
		exit.Code = 0
	}
	log.Info("command finished", "code", exit.Code, "error", exit.Error)
	s.sendQuiet(log, &agentMsg{Exit: &exit})
}

// sender serialises sends: gRPC streams allow one sender at a time, and
// every running command reports on the same stream.
type sender struct {
	mu     sync.Mutex
	stream grpc.ClientStream
}

func (s *sender) send(m *agentMsg) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stream.SendMsg(m)
}

// sendQuiet is for reports whose failure means the session is already
// over; the receive loop surfaces that error.
func (s *sender) sendQuiet(log *slog.Logger, m *agentMsg) {
	if err := s.send(m); err != nil {
		log.Debug("report to installer", "error", err)
	}
}

// chunkWriter forwards each write from os/exec's copy loop as one message,
// so output reaches the installer as it is produced.
type chunkWriter struct {
	id     uint64
	stream int
	s      *sender
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	// SendMsg serialises p before returning, so the buffer may be reused.
	if err := w.s.send(&agentMsg{Output: &outputMsg{ID: w.id, Stream: w.stream, Data: p}}); err != nil {
		return 0, fmt.Errorf("send output: %w", err)
	}
	return len(p), nil
}
