//go:build linux

// Command testhost makes test hosts by hand, for poking at what the
// end-to-end tests see:
//
//	testhost up --prefix p --hosts 2 [--subnet 10.231.0.0/24] [--default-route]
//	testhost run --prefix p HOST -- cmd args...
//	testhost cp --prefix p FILE HOST:PATH   (into the host's own filesystem, as scp would)
//	testhost down --prefix p
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/testhost"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	code, err := dispatch(ctx, os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "testhost:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

const usage = "usage: testhost up|run|cp|down --prefix P [flags] (see -h of each)"

func dispatch(ctx context.Context, args []string) (int, error) {
	if len(args) == 0 {
		return 2, errors.New(usage)
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	prefix := fs.String("prefix", "th", "name prefix of every object")
	workDir := fs.String("workdir", testhost.DefaultWorkDir, "state dir of the hosts")
	switch args[0] {
	case "up":
		hosts := fs.Int("hosts", 2, "number of hosts (named h1, h2, ...)")
		subnet := fs.String("subnet", testhost.DefaultSubnet, "bridge subnet")
		route := fs.Bool("default-route", false, "give hosts a default route via the bridge (egress is dropped and counted)")
		// Without it, a pod's packets to a pod on another host (and the API
		// server's replies to a pod there) would be dropped as egress.
		routed := fs.String("routed", config.DefaultPodCIDR, "networks inside the hosts that pass between them, comma-separated (the cluster's pod network); empty for none")
		if err := fs.Parse(args[1:]); err != nil {
			return 2, err
		}
		opts := testhost.Options{Prefix: *prefix, Subnet: *subnet, WorkDir: *workDir, DefaultRoute: *route}
		if *routed != "" {
			opts.Routed = strings.Split(*routed, ",")
		}
		return 0, up(ctx, opts, *hosts)
	case "run":
		if err := fs.Parse(args[1:]); err != nil {
			return 2, err
		}
		if fs.NArg() < 2 {
			return 2, errors.New("usage: testhost run --prefix P HOST -- cmd args...")
		}
		argv := fs.Args()[1:]
		if argv[0] == "--" {
			argv = argv[1:]
		}
		if len(argv) == 0 {
			return 2, errors.New("run: no command")
		}
		return runIn(ctx, *prefix, fs.Arg(0), argv)
	case "cp":
		if err := fs.Parse(args[1:]); err != nil {
			return 2, err
		}
		name, dst, ok := strings.Cut(fs.Arg(1), ":")
		if fs.NArg() != 2 || !ok || name == "" || !strings.HasPrefix(dst, "/") {
			return 2, errors.New("usage: testhost cp --prefix P FILE HOST:/ABSOLUTE/PATH")
		}
		h, err := testhost.LookupHost(ctx, *prefix, name)
		if err != nil {
			return 1, err
		}
		return 0, h.CopyIn(fs.Arg(0), dst)
	case "down":
		if err := fs.Parse(args[1:]); err != nil {
			return 2, err
		}
		if err := testhost.Cleanup(ctx, *prefix); err != nil {
			return 1, err
		}
		return 0, os.RemoveAll(filepath.Join(*workDir, *prefix))
	}
	return 2, errors.New(usage)
}

// up leaves the hosts running after it exits; "down" removes them.
func up(ctx context.Context, opts testhost.Options, n int) error {
	nw, err := testhost.NewNetwork(ctx, opts)
	if err != nil {
		return err
	}
	for i := 1; i <= n; i++ {
		h, err := nw.AddHost(ctx, fmt.Sprintf("h%d", i))
		if err != nil {
			return errors.Join(err, nw.Close())
		}
		fmt.Printf("%s\t%s\tpid %d\n", h.Name, h.IP, h.PID())
	}
	return nil
}

func runIn(ctx context.Context, prefix, name string, argv []string) (int, error) {
	h, err := testhost.LookupHost(ctx, prefix, name)
	if err != nil {
		return 1, err
	}
	cmd := h.Command(ctx, argv[0], argv[1:]...)
	if t := os.Getenv("TERM"); t != "" {
		cmd.Env = append(cmd.Env, "TERM="+t)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	return 0, err
}
