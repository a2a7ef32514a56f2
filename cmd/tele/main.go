// Command tele builds cluster images.
package main

import (
	"os"

	"github.com/opengravity/gravity/internal/cli/tele"
)

func main() { os.Exit(tele.Main()) }
