package output

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// NewLogger returns the logger the CLIs write to stderr with: terse
// "prog: warning: msg key=value" lines for people, or slog's full text
// format (with times and debug messages) when debug is set.
func NewLogger(prog string, w io.Writer, debug bool) *slog.Logger {
	if debug {
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(&terseHandler{prog: prog, w: w, mu: &sync.Mutex{}})
}

// terseHandler prints warnings and errors only, one line each.
type terseHandler struct {
	prog  string
	w     io.Writer
	mu    *sync.Mutex
	attrs []slog.Attr
}

func (h *terseHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *terseHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	level := "warning"
	if r.Level >= slog.LevelError {
		level = "error"
	}
	fmt.Fprintf(&b, "%s: %s: %s", h.prog, level, r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *terseHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr{}, h.attrs...), attrs...)
	return &c
}

// WithGroup is not used by our commands; groups are flattened.
func (h *terseHandler) WithGroup(string) slog.Handler { return h }
