package manifest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
	batchv1 "k8s.io/api/batch/v1"
)

// HookJob is one hook's Kubernetes Job, loaded and strictly decoded.
type HookJob struct {
	// Hook is the hook name, e.g. "install".
	Hook string
	// Source is where the Job came from: the file:// path relative to the app
	// directory ("install.yaml"), or "app.yaml#hooks.install.job" when inline.
	Source string
	// File is the absolute path of the Job file, or "" when inline.
	File string
	// Job is the decoded Job.
	Job *batchv1.Job
	// Raw is the Job YAML as written.
	Raw []byte
}

// Inline reports whether the Job was written inside the manifest.
func (h HookJob) Inline() bool { return h.File == "" }

// hookLoader resolves hooks.*.job of one manifest.
type hookLoader struct {
	*decoder
	dir string // absolute app directory, "" if unknown
}

// load returns every hook that has a Job, in HookNames order.
func (l *hookLoader) load(hooks *Hooks) []HookJob {
	var out []HookJob
	for _, name := range HookNames() {
		p := "hooks." + name
		hook := hooks.ByName(name)
		if hook == nil {
			if fp, written := l.pos[p]; written {
				l.errorf(fp.key, p, "hook has no job")
			}
			continue
		}
		if hj, ok := l.loadHook(name, hook.Job); ok {
			out = append(out, hj)
		}
	}
	return out
}

func (l *hookLoader) loadHook(name, job string) (HookJob, bool) {
	p := "hooks." + name + ".job"
	node := l.pos[p].value
	if node == nil {
		node = l.pos["hooks."+name].value
	}
	switch {
	case job == "" && l.failed[p]:
		return HookJob{}, false // already reported (wrong type)
	case job == "":
		l.errorf(node, p, "required field is missing (an inline Job or file://path)")
		return HookJob{}, false
	case strings.HasPrefix(job, "file://"):
		return l.loadFile(name, strings.TrimPrefix(job, "file://"), node)
	case strings.HasPrefix(job, "http://"), strings.HasPrefix(job, "https://"):
		l.errorf(node, p, "remote hook jobs are not supported (builds are offline): use file:// or an inline Job")
		return HookJob{}, false
	}
	jp := &jobParser{decoder: l.decoder, display: l.file, prefix: p, mapPos: inlineMapper(node, l.lines)}
	j, ok := jp.parse([]byte(job))
	if !ok {
		return HookJob{}, false
	}
	return HookJob{Hook: name, Source: filepath.Base(l.file) + "#" + p, Job: j, Raw: []byte(job)}, true
}

func (l *hookLoader) loadFile(name, ref string, node *yaml.Node) (HookJob, bool) {
	p := "hooks." + name + ".job"
	target, rel, err := l.resolvePath(ref)
	if err == nil {
		var data []byte
		if data, err = os.ReadFile(target); err == nil {
			return l.parseFile(name, target, rel, data)
		}
		err = &pathError{msg: fmt.Sprintf("cannot read hook file %q: %v", rel, rootCause(err)), err: err}
	}
	l.sink.add(&Error{File: l.file, Line: node.Line, Column: node.Column, Field: p, Msg: err.Error(), Err: errors.Unwrap(err)})
	return HookJob{}, false
}

func (l *hookLoader) parseFile(name, target, rel string, data []byte) (HookJob, bool) {
	display := filepath.Join(filepath.Dir(l.file), rel)
	jp := &jobParser{decoder: l.decoder, display: display, mapPos: identity}
	j, ok := jp.parse(data)
	if !ok {
		return HookJob{}, false
	}
	return HookJob{Hook: name, Source: filepath.ToSlash(rel), File: target, Job: j, Raw: data}, true
}

// pathError is a readable message that still unwraps to its cause (fs.ErrNotExist...).
type pathError struct {
	msg string
	err error
}

func (e *pathError) Error() string { return e.msg }
func (e *pathError) Unwrap() error { return e.err }

// resolvePath turns a file:// path into an absolute path inside the app
// directory. Symlinks are followed before the check, so a link cannot smuggle
// a file from outside into the image.
func (l *hookLoader) resolvePath(ref string) (target, rel string, err error) {
	if ref == "" {
		return "", "", errors.New("empty file:// path")
	}
	if l.dir == "" {
		return "", "", fmt.Errorf("file://%s: no app directory to resolve it against", ref)
	}
	target = filepath.Clean(ref)
	if !filepath.IsAbs(target) {
		target = filepath.Join(l.dir, target)
	}
	rel, ok := within(l.dir, target)
	if !ok {
		return "", "", fmt.Errorf("hook file %q is outside the app directory %s", ref, l.dir)
	}
	realDir, err := filepath.EvalSymlinks(l.dir)
	if err != nil {
		return "", "", &pathError{msg: fmt.Sprintf("cannot resolve app directory: %v", err), err: err}
	}
	realTarget, err := filepath.EvalSymlinks(target)
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", &pathError{msg: fmt.Sprintf("hook file %q not found in %s", rel, l.dir), err: err}
	}
	if err != nil {
		return "", "", &pathError{msg: fmt.Sprintf("cannot resolve hook file %q: %v", rel, rootCause(err)), err: err}
	}
	if _, ok := within(realDir, realTarget); !ok {
		return "", "", fmt.Errorf("hook file %q links outside the app directory (to %s)", rel, realTarget)
	}
	return target, rel, nil
}

// within returns target relative to dir, and whether it lies inside dir.
func within(dir, target string) (string, bool) {
	rel, err := filepath.Rel(dir, target)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return rel, true
}

func rootCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func identity(line, col int) (int, int) { return line, col }

// inlineMapper maps a position inside an inline Job to the manifest. Only a
// literal block (`job: |`) keeps lines intact; for any other style every
// position maps to the job value itself.
func inlineMapper(node *yaml.Node, lines []string) func(int, int) (int, int) {
	if node == nil {
		return identity
	}
	if node.Style&yaml.LiteralStyle == 0 {
		return func(int, int) (int, int) { return node.Line, node.Column }
	}
	indent := 0
	for _, s := range lines[min(node.Line, len(lines)):] {
		if strings.TrimSpace(s) != "" {
			indent = len(s) - len(strings.TrimLeft(s, " "))
			break
		}
	}
	return func(line, col int) (int, int) {
		if line <= 0 {
			return node.Line, node.Column
		}
		if col > 0 {
			col += indent
		}
		return node.Line + line, col
	}
}
