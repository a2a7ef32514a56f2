package gravity

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opengravity/gravity/internal/cli/output"
	"github.com/opengravity/gravity/internal/clusterapi"
	"github.com/opengravity/gravity/internal/identity"
	"github.com/opengravity/gravity/internal/join"
	"github.com/opengravity/gravity/internal/runtime/config"
)

func usersCommand(stdout io.Writer) *cobra.Command {
	stateDir := config.DefaultStateDir
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Invite users to the cluster, reset their passwords, remove and list them (on a master)",
		Long: `Users of the cluster's web panel and API. No user exists after install:
` + "`gravity users add --roles=@teleadmin admin`" + ` makes the first administrator's invitation.`,
	}
	cmd.PersistentFlags().StringVar(&stateDir, "state-dir", stateDir, "the node's state directory")
	api := func() (*clusterapi.Client, error) { return join.AdminAPI(stateDir) }

	var roles []string
	var ttl time.Duration
	add := &cobra.Command{
		Use:     "add <name> --roles=<role>[,<role>] [--ttl=8h]",
		Short:   "Invite a user: prints the signup URL to share with them",
		Example: "  sudo gravity users add --roles=@teleadmin admin",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := api()
			if err != nil {
				return err
			}
			var out clusterapi.InviteResponse
			if err := c.Do(cmd.Context(), http.MethodPost, clusterapi.PathUsers,
				clusterapi.InviteRequest{Name: args[0], Roles: roles, TTL: ttl}, &out); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "Signup token has been created and is valid for %v hours. Share this URL with the user:\n%s\n\nNOTE: make sure this URL is accessible!\n", out.TTL, out.URL)
			return nil
		},
	}
	add.Flags().StringSliceVar(&roles, "roles", nil, "the user's roles (@teleadmin: everything)")
	add.Flags().DurationVar(&ttl, "ttl", identity.DefaultInviteTTL, "how long the invitation is valid (at most 48h)")
	_ = add.MarkFlagRequired("roles")

	var resetTTL time.Duration
	reset := &cobra.Command{
		Use:   "reset <name> [--ttl=8h]",
		Short: "Reset a user's password: the old one stops working now; prints the URL to set a new one",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := api()
			if err != nil {
				return err
			}
			var out clusterapi.InviteResponse
			if err := c.Do(cmd.Context(), http.MethodPost, clusterapi.PathUsers+"/"+url.PathEscape(args[0])+"/reset",
				clusterapi.InviteRequest{TTL: resetTTL}, &out); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "Password reset token has been created and is valid for %v. Share this URL with the user:\n%s\n\nNOTE: make sure this URL is accessible!\n", out.TTL, out.URL)
			return nil
		},
	}
	reset.Flags().DurationVar(&resetTTL, "ttl", identity.DefaultInviteTTL, "how long the link is valid (at most 24h)")

	rm := &cobra.Command{
		Use:   "rm <name>",
		Short: "Remove a user, their API tokens and their sessions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := api()
			if err != nil {
				return err
			}
			if err := c.Do(cmd.Context(), http.MethodDelete, clusterapi.PathUsers+"/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "User %s has been deleted\n", args[0])
			return nil
		},
	}

	var format output.Format
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := api()
			if err != nil {
				return err
			}
			var users []clusterapi.UserInfo
			if err := c.Do(cmd.Context(), http.MethodGet, clusterapi.PathUsers, nil, &users); err != nil {
				return err
			}
			return output.Print(stdout, format, users, func(w io.Writer) error {
				rows := make([][]string, 0, len(users))
				for _, u := range users {
					rows = append(rows, []string{u.Name, u.Type, "[" + strings.Join(u.Roles, " ") + "]"})
				}
				return table(w, []string{"Name", "Type", "Roles"}, rows)
			})
		},
	}
	output.AddFlag(ls, &format)
	cmd.AddCommand(add, reset, rm, ls)
	return cmd
}
