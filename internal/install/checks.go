package install

import (
	"context"
	"fmt"
	"slices"

	"github.com/opengravity/gravity/internal/install/preflight"
	"github.com/opengravity/gravity/internal/manifest"
	"github.com/opengravity/gravity/internal/runtime/config"
)

// checksStep runs the preflight checks on the node (again: the installer
// ran them before planning, but the plan's /checks is what a multi-node
// install runs on each node).
type checksStep struct{ nodeStep }

func (s checksStep) Execute(ctx context.Context) error {
	app, err := loadApp(s.cfg)
	if err != nil {
		return err
	}
	req, err := Requirements(app.Manifest, s.node.Role, s.cfg.StateDir, s.cfg.ServiceCIDR)
	if err != nil {
		return err
	}
	rep, err := preflight.Run(ctx, preflight.Host{}, req, s.cfg.SkipChecks)
	if err != nil {
		return err
	}
	PrintReport(s.out, rep)
	if failed := rep.Failed(); len(failed) > 0 {
		return fmt.Errorf("%d preflight check(s) failed on %s", len(failed), s.node.IP)
	}
	return nil
}

// Rollback: checks change nothing.
func (s checksStep) Rollback(context.Context) error { return nil }

// Requirements are the preflight requirements of the node profile role
// (the built-in defaults when the manifest has no such profile), for a
// cluster of service network serviceCIDR ("": the default).
func Requirements(m *manifest.Manifest, role, stateDir, serviceCIDR string) (preflight.Requirements, error) {
	i := slices.IndexFunc(m.NodeProfiles, func(p manifest.NodeProfile) bool { return p.Name == role })
	var req preflight.Requirements
	var err error
	if i < 0 {
		req = preflight.Defaults(stateDir)
	} else if req, err = preflight.FromProfile(&m.NodeProfiles[i], stateDir); err != nil {
		return req, fmt.Errorf("node profile %q: %w", role, err)
	}
	req.GravityBinDir = config.RuntimeRoot
	req.ServiceCIDR = serviceCIDR
	if req.ServiceCIDR == "" {
		req.ServiceCIDR = config.DefaultServiceCIDR
	}
	return req, nil
}

// PrintReport writes one line per check, as users read them.
func PrintReport(w interface{ Write([]byte) (int, error) }, rep preflight.Report) {
	for _, r := range rep.Results {
		fmt.Fprintf(w, "\t[%s] %s: %s\n", r.Status, r.Name, r.Message)
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "\t[skipped] %s\n", s)
	}
}
