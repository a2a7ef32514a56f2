// Command cis checks a gravity node against the CIS Kubernetes Benchmark
// rules of trivy-checks (the KCV checks), which no one here wrote. The
// rules read control-plane components as Pod manifests and node facts as
// trivy's node collector reports them; gravity's components are processes,
// so a collector of ours feeds them what really runs: each component's
// command line from /proc as the Pod the rules expect, and the real modes
// and owners of the files each rule asks about. It runs on the node, as
// root, with nothing fetched: the rules come from the pinned module.
//
//	cis [-state-dir /var/lib/gravity] [-accepted docs/security.md] [-json] [-inputs]
//
// It prints each check's outcome and the counts. A check that found no
// input is SKIPPED and counted as a failure. A failure is accepted only
// with a written reason: a row `| KCV0059 | reason |` of the -accepted
// file (docs/security.md's table). The exit code is 1 when any failure or
// skip has no reason, and when a reason names a check that passes.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"text/tabwriter"
)

func main() {
	stateDir := flag.String("state-dir", "/var/lib/gravity", "the node's state directory")
	root := flag.String("root", "/", "the node's root (its /proc, /etc and state directory below it)")
	asJSON := flag.Bool("json", false, "print the results as JSON")
	inputs := flag.Bool("inputs", false, "print what the collector gathered, and exit")
	accepted := flag.String("accepted", "", "a file whose `| KCVnnnn | reason |` rows accept failures")
	flag.Parse()
	if err := run(context.Background(), *root, *stateDir, *accepted, *asJSON, *inputs); err != nil {
		fmt.Fprintln(os.Stderr, "cis:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, root, stateDir, acceptedFile string, asJSON, inputs bool) error {
	reasons, err := readAccepted(acceptedFile)
	if err != nil {
		return err
	}
	n, err := collect(root, stateDir)
	if err != nil {
		return fmt.Errorf("collecting: %w", err)
	}
	if inputs {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(n)
	}
	checks, modules, err := loadChecks()
	if err != nil {
		return err
	}
	results, err := evaluate(ctx, checks, modules, n)
	if err != nil {
		return err
	}
	counts := map[string]int{}
	unaccepted := 0
	for i, r := range results {
		counts[r.Status]++
		reason, ok := reasons[r.ID]
		switch {
		case r.Status != "PASS" && ok:
			results[i].Accepted = reason
		case r.Status != "PASS":
			unaccepted++
		case ok:
			// A reason for a check that passes is stale: say so.
			results[i].Details = append(results[i].Details, "passes, but is listed as accepted: remove its row")
			unaccepted++
		}
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"results": results, "counts": counts}); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
		for _, r := range results {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Status, r.ID, r.Title)
			if r.Accepted != "" {
				fmt.Fprintf(tw, "\t\t  accepted: %s\n", r.Accepted)
				continue
			}
			for _, d := range r.Details {
				fmt.Fprintf(tw, "\t\t  %s\n", d)
			}
		}
		tw.Flush()
		fmt.Printf("\n%d checks: %d passed, %d failed, %d skipped (no input; counted as failed); %d without a written reason\n",
			len(results), counts["PASS"], counts["FAIL"], counts["SKIPPED"], unaccepted)
	}
	if unaccepted > 0 {
		os.Exit(1)
	}
	return nil
}

// acceptedRow is a row of docs/security.md's table of accepted failures.
var acceptedRow = regexp.MustCompile(`(?m)^\|\s*(KCV\d+)\s*\|\s*(.+?)\s*\|\s*$`)

func readAccepted(path string) (map[string]string, error) {
	out := map[string]string{}
	if path == "" {
		return out, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for _, m := range acceptedRow.FindAllStringSubmatch(string(raw), -1) {
		out[m[1]] = m[2]
	}
	return out, nil
}
