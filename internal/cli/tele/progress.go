package tele

import (
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/opengravity/gravity/internal/vendor"
)

// newProgress returns a byte-progress display for image pulls and for
// writing the image, or nil when w is not a terminal: progress bars are for
// people, not for logs and pipes.
func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &progress{w: w, pulls: map[string]*pull{}}
}

type pull struct{ done, total int64 }

type progress struct {
	mu    sync.Mutex
	w     io.Writer
	pulls map[string]*pull
	last  time.Time
}

// saving shows the bytes of the cluster image written so far.
func (p *progress) saving(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if done < total && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\r\033[Kwriting %s/%s", humanBytes(done), humanBytes(total))
	if done == total {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func (p *progress) update(e vendor.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e.Kind {
	case vendor.EventProgress:
		p.pulls[e.Ref] = &pull{done: e.Done, total: e.Total}
	case vendor.EventDone:
		delete(p.pulls, e.Ref)
	default:
		return
	}
	// Redraw at most ten times a second, and always when a pull ends.
	if e.Kind == vendor.EventProgress && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.draw()
}

// draw rewrites one status line on stderr: the pulls under way, with bytes.
func (p *progress) draw() {
	refs := make([]string, 0, len(p.pulls))
	for ref := range p.pulls {
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	line := ""
	for _, ref := range refs {
		pl := p.pulls[ref]
		line += fmt.Sprintf("%s %s/%s  ", ref, humanBytes(pl.done), humanBytes(pl.total))
	}
	if width := 120; len(line) > width {
		line = line[:width-1] + "…"
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
}
