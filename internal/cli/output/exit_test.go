package output

import (
	"errors"
	"fmt"
	"testing"

	"github.com/opengravity/gravity/internal/clusterimage"
)

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{errors.New("boom"), ExitError},
		{&clusterimage.SizeError{Path: "a.tar", Want: 10, Got: 5}, ExitIncomplete},
		{fmt.Errorf("cluster image refused: %w", &clusterimage.SizeError{Path: "dir", Want: 10, Got: 5, Unpacked: true}), ExitIncomplete},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
