package gravity

import (
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/cli/output"
	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/clusterapi"
	"github.com/opengravity/gravity/internal/join"
	"github.com/opengravity/gravity/internal/runtime/config"
)

func auditCommand(stdout io.Writer) *cobra.Command {
	stateDir := config.DefaultStateDir
	var format output.Format
	var last int
	cmd := &cobra.Command{
		Use:   "audit [--last=N] [-o text|yaml|json]",
		Short: "Show the cluster API's audit log: logins, user, token, role and resource changes (on a master)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := join.AdminAPI(stateDir)
			if err != nil {
				return err
			}
			var events []cluster.AuditEvent
			if err := c.Do(cmd.Context(), http.MethodGet, clusterapi.PathAudit, nil, &events); err != nil {
				return err
			}
			if last > 0 && len(events) > last {
				events = events[len(events)-last:]
			}
			return output.Print(stdout, format, events, func(w io.Writer) error {
				rows := make([][]string, 0, len(events))
				for _, e := range events {
					rows = append(rows, []string{e.Time.Local().Format(time.RFC3339), e.Code, e.Event, e.User, e.From, e.Message})
				}
				return table(w, []string{"Time", "Code", "Event", "User", "From", "Message"}, rows)
			})
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", stateDir, "the node's state directory")
	cmd.Flags().IntVar(&last, "last", 0, "show only the last N events")
	output.AddFlag(cmd, &format)
	return cmd
}
