// Package mountinfo reads the kernel's /proc/<pid>/mountinfo format.
package mountinfo

import (
	"fmt"
	"strconv"
	"strings"
)

// Entry is the part of a mountinfo line the project uses.
type Entry struct {
	Point  string
	FSType string
	Source string
	// Shared is set when the mount is in a shared peer group: mounts made
	// below it in one mount namespace appear in the others of the group.
	Shared bool
}

// Parse parses proc(5)'s mountinfo format: six or more fields, an
// optional-field list ended by "-", then type, source and super options.
func Parse(data string) ([]Entry, error) {
	var out []Entry
	for i, line := range strings.Split(data, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		e, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", i+1, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func parseLine(line string) (Entry, error) {
	f := strings.Fields(line)
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if len(f) < 7 || sep < 0 || sep+2 >= len(f) {
		return Entry{}, fmt.Errorf("malformed entry %q", line)
	}
	point, err := Unescape(f[4])
	if err != nil {
		return Entry{}, err
	}
	src, err := Unescape(f[sep+2])
	if err != nil {
		return Entry{}, err
	}
	shared := false
	for _, opt := range f[6:sep] {
		shared = shared || strings.HasPrefix(opt, "shared:")
	}
	return Entry{Point: point, FSType: f[sep+1], Source: src, Shared: shared}, nil
}

// Unescape undoes the kernel's octal escaping of space, tab, newline
// and backslash in mountinfo paths.
func Unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) {
			return "", fmt.Errorf("truncated escape in %q", s)
		}
		v, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape in %q: %w", s, err)
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}
