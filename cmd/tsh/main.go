// Command tsh reaches a gravity cluster's nodes and Kubernetes with
// short-lived certificates.
package main

import (
	"os"

	"github.com/opengravity/gravity/internal/cli/tsh"
)

func main() { os.Exit(tsh.Main()) }
