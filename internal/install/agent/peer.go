package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
)

// killWait bounds how long a cancelled Run waits for the agent to confirm
// the process is gone, so a wedged agent cannot hang the installer.
const killWait = 15 * time.Second

// Peer is one connected agent, as the installer sees it.
type Peer struct {
	info   NodeInfo
	stream grpc.ServerStream
	log    *slog.Logger

	sendMu sync.Mutex // gRPC streams allow one sender at a time

	mu     sync.Mutex
	nextID uint64
	runs   map[uint64]*run
	err    error // why the peer is done
	done   chan struct{}
}

// run is one command in flight on a peer.
type run struct {
	// mu serialises writes to the caller's writers with Run returning, so
	// no output is written after Run has handed the writers back.
	mu             sync.Mutex
	stdout, stderr io.Writer
	writeErr       error
	finished       bool
	exit           chan exitMsg
}

func newPeer(info NodeInfo, stream grpc.ServerStream, log *slog.Logger) *Peer {
	return &Peer{
		info:   info,
		stream: stream,
		log:    log.With("node", info.AdvertiseIP),
		runs:   make(map[uint64]*run),
		done:   make(chan struct{}),
	}
}

// Info is what the agent reported about its node.
func (p *Peer) Info() NodeInfo { return p.info }

// Done is closed when the agent's connection ends.
func (p *Peer) Done() <-chan struct{} { return p.done }

// Run runs cmd on the agent's node, writing its output to stdout and stderr
// as it arrives, and returns its exit code. The writers are called from the
// connection's receive loop, so a slow writer stalls this agent's other
// commands. Cancelling ctx kills the process group; Run then returns ctx.Err().
func (p *Peer) Run(ctx context.Context, cmd Command, stdout, stderr io.Writer) (int, error) {
	if len(cmd.Args) == 0 {
		return -1, errors.New("run on agent: empty command")
	}
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	r := &run{stdout: stdout, stderr: stderr, exit: make(chan exitMsg, 1)}
	id, err := p.start(r)
	if err != nil {
		return -1, fmt.Errorf("run %q on %s: %w", cmd.Args[0], p.info.AdvertiseIP, err)
	}
	defer p.forget(id, r)
	msg := &serverMsg{Run: &runMsg{ID: id, Args: cmd.Args, Env: cmd.Env, Stdin: cmd.Stdin}}
	if err := p.send(msg); err != nil {
		return -1, fmt.Errorf("run %q on %s: send: %w", cmd.Args[0], p.info.AdvertiseIP, err)
	}
	select {
	case ex := <-r.exit:
		return p.result(cmd, r, ex)
	case <-p.done:
		return -1, fmt.Errorf("run %q on %s: %w", cmd.Args[0], p.info.AdvertiseIP, p.cause())
	case <-ctx.Done():
	}
	if err := p.send(&serverMsg{Cancel: &cancelMsg{ID: id}}); err != nil {
		p.log.Warn("cancel command", "args", cmd.Args, "error", err)
	}
	// Waiting for the agent's confirmation means that when Run returns the
	// process is gone, so a retry cannot overlap with it.
	timer := time.NewTimer(killWait)
	defer timer.Stop()
	select {
	case <-r.exit:
	case <-p.done:
	case <-timer.C:
		p.log.Warn("agent did not confirm the kill", "args", cmd.Args, "waited", killWait)
	}
	return -1, ctx.Err()
}

func (p *Peer) result(cmd Command, r *run, ex exitMsg) (int, error) {
	r.mu.Lock()
	r.finished = true
	werr := r.writeErr
	r.mu.Unlock()
	if ex.Error != "" {
		return ex.Code, fmt.Errorf("run %q on %s: %s", cmd.Args[0], p.info.AdvertiseIP, ex.Error)
	}
	if werr != nil {
		return ex.Code, fmt.Errorf("run %q on %s: write output: %w", cmd.Args[0], p.info.AdvertiseIP, werr)
	}
	return ex.Code, nil
}

// start registers r under a fresh id unless the peer is already gone.
func (p *Peer) start(r *run) (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return 0, p.err
	}
	p.nextID++
	p.runs[p.nextID] = r
	return p.nextID, nil
}

func (p *Peer) forget(id uint64, r *run) {
	p.mu.Lock()
	delete(p.runs, id)
	p.mu.Unlock()
	r.mu.Lock()
	r.finished = true
	r.mu.Unlock()
}

func (p *Peer) lookup(id uint64) *run {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runs[id]
}

func (p *Peer) send(m *serverMsg) error {
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	return p.stream.SendMsg(m)
}

// receive dispatches the agent's messages until the stream ends.
func (p *Peer) receive() error {
	for {
		var m agentMsg
		if err := p.stream.RecvMsg(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("agent closed the connection")
			}
			return err
		}
		switch {
		case m.Output != nil:
			if r := p.lookup(m.Output.ID); r != nil {
				r.write(m.Output)
			}
		case m.Exit != nil:
			if r := p.lookup(m.Exit.ID); r != nil {
				select {
				case r.exit <- *m.Exit:
				default: // a duplicate exit must not wedge the loop
				}
			}
		default:
			p.log.Warn("unexpected message from agent")
		}
	}
}

func (r *run) write(o *outputMsg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished || r.writeErr != nil {
		return
	}
	w := r.stdout
	if o.Stream == streamStderr {
		w = r.stderr
	}
	if _, err := w.Write(o.Data); err != nil {
		r.writeErr = err
	}
}

// close ends the peer with cause; only the first cause is kept.
func (p *Peer) close(cause error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return
	}
	p.err = cause
	close(p.done)
}

func (p *Peer) cause() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}
