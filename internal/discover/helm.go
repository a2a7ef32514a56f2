package discover

import (
	"context"
	"fmt"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
)

// releaseName is what `helm template` calls a release it is not given a
// name for; templates that print .Release.Name render the same here.
const releaseName = "release-name"

// mergeValues reads --values files and --set flags the way helm does. No
// getters are registered: a build must not fetch values over the network.
func mergeValues(set, files []string) (map[string]interface{}, error) {
	opts := values.Options{ValueFiles: files, Values: set}
	vals, err := opts.MergeValues(getter.Providers{})
	if err != nil {
		return nil, fmt.Errorf("read chart values: %w", err)
	}
	return vals, nil
}

// loadChart loads a chart directory with its subcharts. Charts without
// apiVersion (Helm 2 style, as the workshop's) load as v1.
func loadChart(dir string) (*chart.Chart, error) {
	ch, err := loader.Load(dir)
	if err != nil {
		return nil, err
	}
	if ch.Metadata.APIVersion == "" {
		ch.Metadata.APIVersion = chart.APIVersionV1
	}
	if err := action.CheckDependencies(ch, ch.Metadata.Dependencies); err != nil {
		return nil, err
	}
	return ch, nil
}

// renderChart renders every template of the chart in dir, hooks and test
// hooks included (each needs its image in the cluster), as `helm template`
// would, and returns the manifests as one YAML stream.
func renderChart(ctx context.Context, dir string, set, files []string) (string, error) {
	ch, err := loadChart(dir)
	if err != nil {
		return "", err
	}
	vals, err := mergeValues(set, files)
	if err != nil {
		return "", err
	}
	install := action.NewInstall(&action.Configuration{Log: func(string, ...interface{}) {}})
	install.DryRun = true
	install.ClientOnly = true
	install.Replace = true
	install.ReleaseName = releaseName
	install.Namespace = "default"
	rel, err := install.RunWithContext(ctx, ch, vals)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(rel.Manifest)
	for _, h := range rel.Hooks {
		fmt.Fprintf(&b, "\n---\n# Source: %s\n%s\n", h.Path, h.Manifest)
	}
	return b.String(), nil
}
