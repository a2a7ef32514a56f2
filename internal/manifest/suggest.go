package manifest

import (
	"fmt"
	"strings"
)

// suggest returns ` (did you mean "x"?)` for the closest candidate within a
// small edit distance of name, or "" if none is close enough.
func suggest(name string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		d := editDistance(strings.ToLower(name), strings.ToLower(c))
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	if bestDist < 0 || bestDist > maxTypos(name) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// maxTypos allows about one typo per four characters, at least one.
func maxTypos(name string) int {
	return max(1, len(name)/4)
}

// editDistance is the optimal-string-alignment distance between a and b, in
// runes: Levenshtein plus adjacent transpositions, the commonest typo ("nmae").
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		// Field names are short; a huge key is never a typo of one.
		return max(len(ra), len(rb))
	}
	// d[i][j] is the distance between ra[:i] and rb[:j].
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
