// Command gravity installs and operates clusters from cluster images.
package main

import (
	"os"

	"github.com/opengravity/gravity/internal/cli/gravity"
)

func main() { os.Exit(gravity.Main()) }
