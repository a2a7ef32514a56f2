// Command helm is Helm 2's command line on top of upstream Helm 3: cluster
// images carry hooks written for Helm 2 (`helm install CHART --name X`,
// `helm delete --purge X`, …), which must run unchanged. It translates the
// command line (internal/helmcompat) and execs the real Helm 3, helm3,
// installed beside it. Standard library only: it ships in every node's
// runtime and in the hook tools image, so it stays small.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/opengravity/gravity/internal/helmcompat"
)

func main() {
	helm3, err := findHelm3()
	if err != nil {
		fail(err)
	}
	plan, err := helmcompat.Translate(os.Args[1:], func(conn []string) ([]helmcompat.Release, error) {
		return listReleases(helm3, conn)
	})
	if err != nil {
		fail(err)
	}
	for _, n := range plan.Notes {
		fmt.Fprintln(os.Stderr, "helm: note:", n)
	}
	switch len(plan.Calls) {
	case 0:
		os.Exit(0)
	case 1:
		if plan.Helm2List {
			os.Exit(listTable(helm3, plan.Calls[0]))
		}
		// Exec, so that exit codes and signals are helm3's own. argv[0] is
		// helm3's path: Helm 3 gives it to plugins as HELM_BIN, and plugins
		// expect Helm 3, not this.
		err = syscall.Exec(helm3, append([]string{helm3}, plan.Calls[0]...), os.Environ())
		fail(fmt.Errorf("running %s: %w", helm3, err))
	default:
		os.Exit(runAll(helm3, plan.Calls))
	}
}

// findHelm3: $GRAVITY_HELM3 (for tests), else helm3 beside this binary,
// symlinks resolved: the hook tools image runs it as
// /usr/local/bin/helm → ../../../bin/helm, with helm3 in /bin.
func findHelm3() (string, error) {
	if p := os.Getenv("GRAVITY_HELM3"); p != "" {
		return p, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding helm3: %w", err)
	}
	if self, err = filepath.EvalSymlinks(self); err != nil {
		return "", fmt.Errorf("finding helm3: %w", err)
	}
	p := filepath.Join(filepath.Dir(self), "helm3")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("finding helm3 beside %s: %w", self, err)
	}
	return p, nil
}

// listReleases lists every release of the cluster through helm3.
func listReleases(helm3 string, conn []string) ([]helmcompat.Release, error) {
	args := helmcompat.ListArgs(conn)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helm3, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, strings.TrimPrefix(strings.TrimSpace(stderr.String()), "Error: "))
	}
	return helmcompat.ParseReleases(stdout.Bytes())
}

// listTable runs a JSON list and prints it as Helm 2's table.
func listTable(helm3 string, args []string) int {
	var stdout bytes.Buffer
	cmd := exec.Command(helm3, args...)
	cmd.Args[0] = helm3
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, &stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() > 0 {
			return exit.ExitCode()
		}
		fail(err)
	}
	if err := helmcompat.WriteHelm2List(os.Stdout, stdout.Bytes()); err != nil {
		fail(err)
	}
	return 0
}

// runAll runs the calls in order, stopping at the first that fails, and
// returns the exit code. SIGINT and SIGTERM are passed on to the running
// call: it decides when to stop.
func runAll(helm3 string, calls [][]string) int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	for _, c := range calls {
		cmd := exec.Command(helm3, c...)
		cmd.Args[0] = helm3
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(os.Stderr, "Error: running %s: %v\n", helm3, err)
			return 1
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if code := wait(cmd, done, sigs); code != 0 {
			return code
		}
	}
	return 0
}

// wait waits for cmd, forwarding signals, and returns its exit code.
func wait(cmd *exec.Cmd, done <-chan error, sigs <-chan os.Signal) int {
	for {
		select {
		case sig := <-sigs:
			_ = cmd.Process.Signal(sig) // it may just have exited
		case err := <-done:
			var exit *exec.ExitError
			switch {
			case err == nil:
				return 0
			case errors.As(err, &exit) && exit.ExitCode() > 0:
				return exit.ExitCode()
			default: // killed by a signal, or could not wait
				fmt.Fprintf(os.Stderr, "Error: %s: %v\n", strings.Join(cmd.Args, " "), err)
				return 1
			}
		}
	}
}

// fail reports err the way Helm does, and exits 1.
func fail(err error) {
	fmt.Fprintln(os.Stderr, "Error:", err)
	os.Exit(1)
}
