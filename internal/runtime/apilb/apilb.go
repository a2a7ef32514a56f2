// Package apilb is a worker's node-local load balancer in front of every
// master's API server (`gravity runtime api-lb`): the worker's kubelet,
// kube-proxy and pod network agent reach the API at 127.0.0.1:6443, and
// the balancer passes each connection (TLS and all: it never terminates
// it) to a master that answers. Losing a master costs the connections it
// held; new ones go to the others at once. The masters are the node
// config's and, as the cluster grows, the API servers the `kubernetes`
// service's EndpointSlices list.
package apilb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sort"
	"sync"
	"time"
)

// Balancer passes connections to healthy backends, in turn.
type Balancer struct {
	// Listen is host:port; Backends host:port of each API server.
	Listen string
	Log    *slog.Logger
	// DialTimeout bounds a connection attempt to one backend.
	DialTimeout time.Duration
	// Check says whether a backend serves; nil: it accepts connections.
	// An API server can accept connections and serve nothing (its master
	// was removed and its etcd is gone): the runtime checks /readyz.
	Check func(ctx context.Context, backend string) error

	mu       sync.Mutex
	backends []string
	down     map[string]time.Time // backends that failed, since when
	next     int
	// conns are the open connections by backend: those of a backend that
	// leaves the list are closed, so that their clients (a kubelet's
	// watches) reconnect to a master that is still in the cluster rather
	// than wait on one that was removed and no longer hears from etcd.
	conns map[string]map[net.Conn]struct{}
}

// New makes a balancer for backends.
func New(listen string, backends []string, log *slog.Logger) *Balancer {
	b := &Balancer{Listen: listen, Log: log, DialTimeout: 2 * time.Second, down: map[string]time.Time{},
		conns: map[string]map[net.Conn]struct{}{}}
	b.SetBackends(backends)
	return b
}

// SetBackends replaces the backend list; an empty list is ignored (the
// last known masters are better than none).
func (b *Balancer) SetBackends(backends []string) {
	backends = slices.Clone(backends)
	sort.Strings(backends)
	backends = slices.Compact(backends)
	if len(backends) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !slices.Equal(b.backends, backends) && b.Log != nil {
		b.Log.Info("API servers", "backends", fmt.Sprint(backends))
	}
	b.backends = backends
	for be, cs := range b.conns {
		if slices.Contains(backends, be) {
			continue
		}
		for c := range cs {
			c.Close()
		}
		delete(b.conns, be) // as drop does, under the lock held here
	}
}

// track records c as a connection to be; the returned func forgets it.
func (b *Balancer) track(be string, c net.Conn) func() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conns[be] == nil {
		b.conns[be] = map[net.Conn]struct{}{}
	}
	b.conns[be][c] = struct{}{}
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.conns[be], c)
	}
}

// Backends returns the current list.
func (b *Balancer) Backends() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.backends)
}

// order is the backends to try for one connection: healthy ones first,
// starting at the next in turn, then the ones that failed lately (all
// masters may have been down a moment ago and one is back).
func (b *Balancer) order() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.backends)
	var up, down []string
	for i := range n {
		be := b.backends[(b.next+i)%n]
		if _, bad := b.down[be]; bad {
			down = append(down, be)
		} else {
			up = append(up, be)
		}
	}
	if n > 0 {
		b.next = (b.next + 1) % n
	}
	return append(up, down...)
}

func (b *Balancer) mark(be string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		delete(b.down, be)
		return
	}
	if _, bad := b.down[be]; !bad && b.Log != nil {
		b.Log.Warn("API server unreachable", "backend", be, "error", err.Error())
	}
	b.down[be] = time.Now()
}

// Dial connects to the first backend in order that answers, and says
// which it is.
func (b *Balancer) Dial(ctx context.Context) (net.Conn, string, error) {
	var errs []error
	for _, be := range b.order() {
		d := net.Dialer{Timeout: b.DialTimeout}
		c, err := d.DialContext(ctx, "tcp", be)
		b.mark(be, err)
		if err == nil {
			return c, be, nil
		}
		errs = append(errs, err)
	}
	return nil, "", fmt.Errorf("no API server answers: %w", errors.Join(errs...))
}

// Serve accepts on ln until ctx ends.
func (b *Balancer) Serve(ctx context.Context, ln net.Listener) error {
	go func() { <-ctx.Done(); ln.Close() }()
	go b.check(ctx)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go b.pass(ctx, c)
	}
}

// Run listens on Listen and serves until ctx ends.
func (b *Balancer) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", b.Listen)
	if err != nil {
		return fmt.Errorf("API load balancer: %w", err)
	}
	return b.Serve(ctx, ln)
}

func (b *Balancer) pass(ctx context.Context, c net.Conn) {
	defer c.Close()
	up, be, err := b.Dial(ctx)
	if err != nil {
		if b.Log != nil {
			b.Log.Error("connection dropped", "error", err.Error())
		}
		return
	}
	defer up.Close()
	defer b.track(be, up)()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(up, c)
	go cp(c, up)
	<-done
	<-done
}

// check probes every backend in turn. One that fails is tried last for
// new connections and loses the ones it holds, so that their clients (a
// kubelet's watches) reconnect to one that serves instead of waiting on
// one that accepts but never answers.
func (b *Balancer) check(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, be := range b.Backends() {
			cctx, cancel := context.WithTimeout(ctx, b.DialTimeout)
			err := b.probe(cctx, be)
			cancel()
			b.mark(be, err)
			if err != nil {
				b.drop(be)
			}
		}
	}
}

func (b *Balancer) probe(ctx context.Context, be string) error {
	if b.Check != nil {
		return b.Check(ctx, be)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", be)
	if err == nil {
		c.Close()
	}
	return err
}

// drop closes the connections to be.
func (b *Balancer) drop(be string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.conns[be] {
		c.Close()
	}
	delete(b.conns, be)
}
