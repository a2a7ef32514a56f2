package apilb

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// echo is a backend that answers each line with its name.
func echo(t *testing.T, name string) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					_, _ = c.Write([]byte(name + "\n"))
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln
}

func ask(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("hi\n")); err != nil {
		return ""
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

func TestBalancerFailsOver(t *testing.T) {
	a, b := echo(t, "a"), echo(t, "b")
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	lb := New("127.0.0.1:0", []string{a.Addr().String(), b.Addr().String(), deadAddr}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = lb.Serve(ctx, ln) }()

	seen := map[string]int{}
	for range 6 {
		seen[ask(t, ln.Addr().String())]++
	}
	if seen["a"] == 0 || seen["b"] == 0 || seen[""] != 0 {
		t.Fatalf("answers %v: want both live backends, never a failure", seen)
	}
	// One master goes: every new connection lands on the other.
	a.Close()
	for range 4 {
		if got := ask(t, ln.Addr().String()); got != "b" {
			t.Fatalf("after a went: answer %q", got)
		}
	}
	// All gone: the connection is closed, not hung.
	b.Close()
	if got := ask(t, ln.Addr().String()); got != "" {
		t.Fatalf("no backend, answer %q", got)
	}
}

func TestSetBackendsKeepsLastKnown(t *testing.T) {
	lb := New("", []string{"10.0.0.2:6443", "10.0.0.1:6443", "10.0.0.1:6443"}, nil)
	lb.SetBackends(nil)
	if got := strings.Join(lb.Backends(), ","); got != "10.0.0.1:6443,10.0.0.2:6443" {
		t.Fatalf("backends %s", got)
	}
}

func TestSliceBackends(t *testing.T) {
	s := unstructured.Unstructured{Object: map[string]any{
		"ports": []any{map[string]any{"port": int64(6443)}},
		"endpoints": []any{
			map[string]any{"addresses": []any{"10.0.0.1"}, "conditions": map[string]any{"ready": true}},
			map[string]any{"addresses": []any{"10.0.0.2"}, "conditions": map[string]any{"ready": false}},
			map[string]any{"addresses": []any{"10.0.0.3"}},
			map[string]any{"addresses": []any{"not-an-ip"}},
		},
	}}
	if got := strings.Join(sliceBackends(s), ","); got != "10.0.0.1:6443,10.0.0.3:6443" {
		t.Fatalf("backends %s", got)
	}
}

// A backend that leaves the list loses its connections: their clients
// reconnect to one that is still in the cluster.
func TestRemovedBackendLosesConnections(t *testing.T) {
	a, b := echo(t, "a"), echo(t, "b")
	lb := New("", []string{a.Addr().String()}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = lb.Serve(ctx, ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	_, _ = c.Write([]byte("hi\n"))
	if line, _ := r.ReadString('\n'); line != "a\n" {
		t.Fatalf("first answer %q", line)
	}
	lb.SetBackends([]string{b.Addr().String()})
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("the connection to the removed backend stayed open")
	}
	if got := ask(t, ln.Addr().String()); got != "b" {
		t.Fatalf("a new connection went to %q", got)
	}
}

// A backend that accepts connections but fails its check loses the ones
// it holds, and new ones go elsewhere.
func TestFailingCheckDropsConnections(t *testing.T) {
	a, b := echo(t, "a"), echo(t, "b")
	lb := New("", []string{a.Addr().String()}, nil)
	var sick atomic.Bool
	lb.Check = func(ctx context.Context, be string) error {
		if be == a.Addr().String() && sick.Load() {
			return errors.New("not ready")
		}
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = lb.Serve(ctx, ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	_, _ = c.Write([]byte("hi\n"))
	if line, _ := r.ReadString('\n'); line != "a\n" {
		t.Fatalf("first answer %q", line)
	}
	lb.SetBackends([]string{a.Addr().String(), b.Addr().String()})
	sick.Store(true)
	_ = c.SetReadDeadline(time.Now().Add(6 * time.Second))
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("the connection to the failing backend stayed open")
	}
	if got := ask(t, ln.Addr().String()); got != "b" {
		t.Fatalf("a new connection went to %q", got)
	}
}
