package helmcompat

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// listed is one entry of `helm3 list -o json`, as Helm 2's table needs it.
type listed struct {
	Name       string `json:"name"`
	Namespace  string `json:"namespace"`
	Revision   string `json:"revision"`
	Updated    string `json:"updated"`
	Status     string `json:"status"`
	Chart      string `json:"chart"`
	AppVersion string `json:"app_version"`
}

// helm3Time is how Helm 3 prints a release's time in its JSON list (Go's
// time.Time.String of a UTC or local time).
const helm3Time = "2006-01-02 15:04:05.999999999 -0700 MST"

// helm2Status are Helm 3's statuses under the names Helm 2 printed.
var helm2Status = map[string]string{"uninstalled": "DELETED", "uninstalling": "DELETING"}

// WriteHelm2List prints `helm3 list -o json` output as Helm 2's `helm ls`
// table: NAME REVISION UPDATED STATUS CHART APP VERSION NAMESPACE, the
// status in capitals and the time as Helm 2 printed it. Each column is
// padded to its widest cell and followed by a tab, as Helm 2's table was.
func WriteHelm2List(w io.Writer, data []byte) error {
	var rs []listed
	if err := json.Unmarshal(data, &rs); err != nil {
		return fmt.Errorf("parsing helm list output: %w", err)
	}
	if len(rs) == 0 {
		return nil // Helm 2 printed nothing, not even the header
	}
	rows := [][]string{{"NAME", "REVISION", "UPDATED", "STATUS", "CHART", "APP VERSION", "NAMESPACE"}}
	for _, r := range rs {
		updated := r.Updated
		if t, err := time.Parse(helm3Time, r.Updated); err == nil {
			updated = t.Format(time.ANSIC)
		}
		status, ok := helm2Status[r.Status]
		if !ok {
			status = strings.ToUpper(strings.ReplaceAll(r.Status, "-", "_"))
		}
		rows = append(rows, []string{r.Name, r.Revision, updated, status, r.Chart, r.AppVersion, r.Namespace})
	}
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len(c))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		for i, c := range row {
			if i == len(row)-1 {
				b.WriteString(c)
				break
			}
			fmt.Fprintf(&b, "%-*s\t", widths[i], c)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
