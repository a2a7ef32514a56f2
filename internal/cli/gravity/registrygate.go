package gravity

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/runtime/registrygate"
)

// registryGateCommand is a master's registry gate, which the runtime
// supervises (node.RegistryGate). Not for people.
func registryGateCommand() *cobra.Command {
	var addr, socket, cert, key, clientCA string
	cmd := &cobra.Command{
		Use:    config.RegistryGateCommand,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tlsCfg, err := pki.ServerTLS(cert, key, clientCA)
			if err != nil {
				return fmt.Errorf("registry gate: %w", err)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			return registrygate.Run(cmd.Context(), registrygate.Config{Addr: addr, Socket: socket, TLS: tlsCfg, Log: log})
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "", "host:port to serve the registry on")
	f.StringVar(&socket, "socket", "", "the registry's unix socket")
	f.StringVar(&cert, "cert", "", "the registry's serving certificate")
	f.StringVar(&key, "key", "", "its key")
	f.StringVar(&clientCA, "client-ca", "", "the CA client certificates must chain to")
	for _, name := range []string{"addr", "socket", "cert", "key", "client-ca"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}
