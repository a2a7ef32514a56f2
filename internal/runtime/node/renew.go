package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"syscall"
	"time"

	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/runtime/config"
)

// reloadsCertificates are the components that read their certificates
// anew for each connection (etcd) or watch their files (containerd reads
// the registry client's for each pull): renewing needs no restart of
// them. Every other component holds what it read at start.
var reloadsCertificates = map[string]bool{Etcd: true, Containerd: true, Registry: true}

// renewReadyTimeout bounds each component's restart.
const renewReadyTimeout = 2 * time.Minute

// RenewCertificates issues every certificate and kubeconfig of master n
// anew from the cluster's CA set (same names, a fresh year), then restarts
// the components that read their certificates only at start
// (RestartOnNewCertificates). Workers hold no CA keys: theirs are renewed
// through the cluster service (join.RenewWorker), which restarts them the
// same way.
func RenewCertificates(ctx context.Context, root string, n config.Node, out io.Writer) error {
	n, err := n.WithDefaults()
	if err != nil {
		return err
	}
	if !n.IsMaster() {
		return errors.New("renew: this node holds no CA keys; its certificates are renewed through the cluster service")
	}
	p := n.Paths()
	cs, err := pki.LoadCASet(filepath.Join(root, p.PKI))
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	if err := IssueNode(root, cs, n); err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	fmt.Fprintf(out, "Issued new certificates for %s from the cluster CA\n", n.IP)
	return RestartOnNewCertificates(ctx, n, out)
}

// RestartOnNewCertificates restarts, one at a time and each ready before
// the next, the running components of n that read their certificates
// only at start. Pods keep running throughout (kubelet's restart leaves
// them be); the API is away for the seconds kube-apiserver takes to
// restart on a single master.
func RestartOnNewCertificates(ctx context.Context, n config.Node, out io.Writer) error {
	st, err := ReadStatus(n.RunDir)
	if errors.Is(err, ErrNotRunning) {
		fmt.Fprintln(out, "The runtime is not running: its components read the new certificates when it starts")
		return nil
	}
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	for _, proc := range st.Processes {
		if reloadsCertificates[proc.Name] || proc.PID == 0 {
			continue
		}
		if err := restartComponent(ctx, n.RunDir, proc); err != nil {
			return fmt.Errorf("renew: %w", err)
		}
		fmt.Fprintf(out, "Restarted %s with its new certificates\n", proc.Name)
	}
	return nil
}

// restartComponent ends one supervised process with SIGTERM and waits for
// the supervisor to have started it again and seen it ready.
func restartComponent(ctx context.Context, runDir string, proc ProcessStatus) error {
	if err := syscall.Kill(proc.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stopping %s (pid %d): %w", proc.Name, proc.PID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, renewReadyTimeout)
	defer cancel()
	for {
		st, err := ReadStatus(runDir)
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", proc.Name, err)
		}
		for _, p := range st.Processes {
			if p.Name == proc.Name && p.PID != 0 && p.PID != proc.PID && p.State == "ready" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not come back ready after its restart: %w", proc.Name, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
