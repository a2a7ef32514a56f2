package output

import (
	"errors"

	"github.com/opengravity/gravity/internal/clusterimage"
)

// Exit codes shared by tele and gravity. Scripts that copy images around
// tell an incomplete copy (copy it again) from any other failure.
const (
	ExitOK          = 0
	ExitError       = 1
	ExitIncomplete  = 3   // a cluster image cut short or with bytes appended
	ExitInterrupted = 130 // SIGINT or SIGTERM
)

// ExitCode is the exit code for a command's error.
func ExitCode(err error) int {
	var size *clusterimage.SizeError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &size):
		return ExitIncomplete
	}
	return ExitError
}
