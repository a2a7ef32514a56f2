package tsh

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/opengravity/gravity/internal/tsh"
)

func loginCommand(g *globals, stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	var proxy, user string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "login --proxy=<host:port> --user=<name>",
		Short: "Log in to a cluster: certificates under ~/.tsh, a kubeconfig context for kubectl",
		Long: "Asks the password (from the terminal, or one line of standard input when it is not one) and, when the\n" +
			"cluster asks for one, the one-time code; keeps an SSH and an x509 certificate for a key made here.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := newPrompter(stdin, stderr)
			p, err := tsh.Login(cmd.Context(), tsh.LoginOptions{Proxy: proxy, User: user, Insecure: g.insecure, TTL: ttl,
				Home: g.home, Kubeconfig: g.kubeconfig,
				Password: func() (string, error) { return in.secret(fmt.Sprintf("Enter password for user %s: ", user)) },
				OTP:      func() (string, error) { return in.secret("Enter your one-time code: ") }})
			if err != nil {
				return err
			}
			printProfile(stdout, p)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&proxy, "proxy", "", "the cluster's proxy: a master's host:port of the cluster management URL (32009) or API (3009)")
	f.StringVar(&user, "user", "", "the user to log in as")
	f.DurationVar(&ttl, "ttl", 0, "ask for certificates that last less than the roles allow")
	_ = cmd.MarkFlagRequired("proxy")
	_ = cmd.MarkFlagRequired("user")
	return cmd
}

func printProfile(w io.Writer, p *tsh.Profile) {
	fmt.Fprintf(w, "> Profile URL:  https://%s\n", p.Proxy)
	fmt.Fprintf(w, "  Logged in as: %s\n", p.User)
	fmt.Fprintf(w, "  Cluster:      %s\n", p.Cluster)
	fmt.Fprintf(w, "  Roles:        %s\n", strings.Join(p.Roles, ", "))
	fmt.Fprintf(w, "  Logins:       %s\n", strings.Join(p.Logins, ", "))
	fmt.Fprintf(w, "  Kubernetes:   context %s (kubectl)\n", p.Context)
	left := time.Until(p.Expires).Round(time.Minute)
	state := fmt.Sprintf("[valid for %s]", left)
	if left <= 0 {
		state = "[EXPIRED]"
	}
	fmt.Fprintf(w, "  Valid until:  %s %s\n", p.Expires.Local().Format("2006-01-02 15:04:05 -0700 MST"), state)
}

// prompter reads secrets from the terminal without echo, or line by line
// from standard input when it is not a terminal (as docker login
// --password-stdin does).
type prompter struct {
	in     io.Reader
	lines  *bufio.Reader
	stderr io.Writer
}

func newPrompter(in io.Reader, stderr io.Writer) *prompter {
	return &prompter{in: in, lines: bufio.NewReader(in), stderr: stderr}
}

func (p *prompter) secret(prompt string) (string, error) {
	if f, ok := p.in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(p.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(p.stderr)
		return string(b), err
	}
	line, err := p.lines.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("reading the password from standard input: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
