package gravity

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/opengravity/gravity/internal/cli/output"
	"github.com/opengravity/gravity/internal/clusterapi"
	"github.com/opengravity/gravity/internal/join"
	"github.com/opengravity/gravity/internal/resources"
	"github.com/opengravity/gravity/internal/runtime/config"
)

func resourceCommand(stdout io.Writer) *cobra.Command {
	stateDir := config.DefaultStateDir
	cmd := &cobra.Command{
		Use:   "resource",
		Short: "Create, list and remove the cluster's configuration resources (on a master)",
		Long: `Configuration resources are YAML documents of kind, version, metadata and spec, as
Gravity's: ` + strings.Join(resources.Kinds(), ", ") + `.
A file may hold several, separated by "---"; each kind has its plural too ("users").`,
	}
	cmd.PersistentFlags().StringVar(&stateDir, "state-dir", stateDir, "the node's state directory")

	var file string
	var force bool
	create := &cobra.Command{
		Use:     "create [-f] FILE [--force]",
		Short:   "Create the resources of a file (all or none); --force replaces existing ones",
		Example: "  sudo gravity resource create agent.yaml",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if file != "" {
					return errors.New("name the file once: as the argument or with -f")
				}
				file = args[0]
			}
			if file == "" {
				return errors.New("no file: gravity resource create FILE")
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			// Decoded here first: a bad file is reported with its lines
			// before anything is sent.
			rs, err := resources.Decode(file, data)
			if err != nil {
				return err
			}
			c, err := join.AdminAPI(stateDir)
			if err != nil {
				return err
			}
			var out clusterapi.ResourcesResponse
			if err := c.Do(cmd.Context(), http.MethodPost, clusterapi.PathResources,
				clusterapi.ResourcesRequest{Resources: rs, Force: force}, &out); err != nil {
				return err
			}
			for _, m := range out.Messages {
				fmt.Fprintln(stdout, m)
			}
			return nil
		},
	}
	create.Flags().StringVarP(&file, "filename", "f", "", "the resource file")
	create.Flags().BoolVar(&force, "force", false, "replace resources that exist")

	var user string
	var format output.Format
	get := &cobra.Command{
		Use:     "get KIND [NAME] [--user=NAME] [-o text|yaml|json]",
		Short:   "List resources of a kind, or show one",
		Example: "  sudo gravity resource get users\n  sudo gravity resource get tokens --user=agent@example.com",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, ok := resources.CanonicalKind(args[0])
			if !ok {
				return fmt.Errorf("unknown resource kind %q (one of %s)", args[0], strings.Join(resources.Kinds(), ", "))
			}
			if kind == resources.KindToken && user == "" {
				return errors.New("please specify user via --user flag")
			}
			q := url.Values{}
			if len(args) == 2 {
				q.Set("name", args[1])
			}
			if user != "" {
				q.Set("user", user)
			}
			c, err := join.AdminAPI(stateDir)
			if err != nil {
				return err
			}
			var list []resources.Resource
			if err := c.Do(cmd.Context(), http.MethodGet, clusterapi.PathResources+"/"+kind+"?"+q.Encode(), nil, &list); err != nil {
				return err
			}
			if format == output.YAML {
				return printYAMLDocuments(stdout, list)
			}
			return output.Print(stdout, format, list, func(w io.Writer) error { return printResources(w, kind, list) })
		},
	}
	get.Flags().StringVar(&user, "user", "", "the user whose tokens to list")
	output.AddFlag(get, &format)

	rm := &cobra.Command{
		Use:   "rm KIND NAME",
		Short: "Remove a resource",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, ok := resources.CanonicalKind(args[0])
			if !ok {
				return fmt.Errorf("unknown resource kind %q (one of %s)", args[0], strings.Join(resources.Kinds(), ", "))
			}
			c, err := join.AdminAPI(stateDir)
			if err != nil {
				return err
			}
			var out clusterapi.ResourcesResponse
			if err := c.Do(cmd.Context(), http.MethodDelete, clusterapi.PathResources+"/"+kind+"/"+url.PathEscape(args[1]), nil, &out); err != nil {
				return err
			}
			for _, m := range out.Messages {
				fmt.Fprintln(stdout, m)
			}
			return nil
		},
	}
	cmd.AddCommand(create, get, rm)
	return cmd
}

// printYAMLDocuments writes resources as a file `resource create` reads
// back.
func printYAMLDocuments(w io.Writer, list []resources.Resource) error {
	for i, r := range list {
		data, err := yaml.Marshal(r)
		if err != nil {
			return err
		}
		if i > 0 {
			fmt.Fprintln(w, "---")
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	return nil
}

// printResources prints Gravity's table of a kind.
func printResources(w io.Writer, kind string, list []resources.Resource) error {
	var headers []string
	var rows [][]string
	for _, r := range list {
		switch s := r.Spec.(type) {
		case *resources.UserSpec:
			headers = []string{"Name", "Type", "Roles"}
			rows = append(rows, []string{r.Metadata.Name, s.Type, "[" + strings.Join(s.Roles, " ") + "]"})
		case *resources.TokenSpec:
			headers = []string{"Token", "User", "Expires"}
			expires := "never"
			if r.Metadata.Expires != nil {
				expires = r.Metadata.Expires.UTC().Format("Mon Jan _2 15:04 UTC")
			}
			rows = append(rows, []string{r.Metadata.Name, s.User, expires})
		case *resources.RoleSpec:
			headers = []string{"Name", "Kubernetes Groups", "Logins", "Max Session TTL"}
			rows = append(rows, []string{r.Metadata.Name, strings.Join(s.Allow.KubernetesGroups, ","), strings.Join(s.Allow.Logins, ","), s.Options.MaxSessionTTL})
		case *resources.AuthGatewaySpec:
			headers = []string{"Parameter", "Value"}
			rows = append(rows, []string{"Public address", strings.Join(s.PublicAddr, ",")},
				[]string{"Web public address", strings.Join(s.WebPublicAddr, ",")},
				[]string{"SSH public address", strings.Join(s.SSHPublicAddr, ",")},
				[]string{"Kubernetes public address", strings.Join(s.KubernetesPublicAddr, ",")})
		case *resources.AuthPreferenceSpec:
			headers = []string{"Type", "Second Factor", "Connector"}
			rows = append(rows, []string{orDash(s.Type), orDash(s.SecondFactor), orDash(s.ConnectorName)})
		case *resources.TLSKeyPairSpec:
			headers = []string{"Name", "Common Name", "Organization", "Expires"}
			cn, org, expires := certSummary(s.Cert)
			rows = append(rows, []string{r.Metadata.Name, cn, org, expires})
		case *resources.OIDCSpec:
			headers = []string{"Name", "Issuer URL", "Additional Scope"}
			rows = append(rows, []string{r.Metadata.Name, s.IssuerURL, strings.Join(s.Scope, ",")})
		case *resources.GithubSpec:
			headers = []string{"Name", "Client ID", "Mapping"}
			var m []string
			for _, t := range s.TeamsToLogins {
				m = append(m, fmt.Sprintf("%s/%s -> %s", t.Organization, t.Team, strings.Join(t.Logins, ",")))
			}
			rows = append(rows, []string{r.Metadata.Name, s.ClientID, strings.Join(m, "; ")})
		}
	}
	if len(list) == 0 {
		_, err := fmt.Fprintf(w, "No %s resources\n", kind)
		return err
	}
	return table(w, headers, rows)
}

func certSummary(certPEM string) (cn, org, expires string) {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		return "-", "-", "-"
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "-", "-", "-"
	}
	return c.Subject.CommonName, strings.Join(c.Subject.Organization, ","), c.NotAfter.UTC().Format(time.RFC3339)
}

// table prints Gravity's tables: a header, dashes as wide as each
// header, the rows.
func table(w io.Writer, headers []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 8, 5, ' ', 0)
	dashes := make([]string, len(headers))
	for i, h := range headers {
		dashes[i] = strings.Repeat("-", len(h))
	}
	fmt.Fprintln(tw, strings.Join(headers, "\t"))
	fmt.Fprintln(tw, strings.Join(dashes, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}
