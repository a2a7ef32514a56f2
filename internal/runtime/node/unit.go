package node

import (
	"fmt"
	"path/filepath"
	"strings"
)

// unitTemplate is the runtime's unit. The choices that matter:
//   - Type=notify: Run sends READY=1 once every component passed its
//     probe, so `systemctl start` and units ordered After= it wait for a
//     working node, not for a process that merely exists.
//   - KillMode=process: systemd signals only the supervisor, which stops
//     each component's process group itself (SIGTERM, then SIGKILL after
//     its stop timeout). What the supervisor leaves on purpose (containerd
//     shims and their containers, as the daemon path does, and k3s) is not
//     killed with it; a restarted supervisor kills its own leftovers.
//   - Delegate=yes: kubelet and containerd manage cgroups themselves.
//   - TimeoutStartSec covers the sum of the components' ready timeouts;
//     TimeoutStopSec the supervisor's stops, like `gravity runtime stop`.
const unitTemplate = `# Written by gravity runtime start, which rewrites it: do not edit.
[Unit]
Description=Gravity node runtime (Kubernetes)
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart=%s
Restart=always
RestartSec=5
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=15min
TimeoutStopSec=3min

[Install]
WantedBy=multi-user.target
`

// ForegroundArgs is the command line, after the binary, that runs the
// runtime in the foreground: what the daemon and the unit both execute.
func ForegroundArgs(configPath string) []string {
	return []string{"runtime", "start", "--config", configPath, "--foreground"}
}

// Unit is the text of the unit that runs the gravity binary exe with the
// node config at configPath in the foreground.
func Unit(exe, configPath string) (string, error) {
	for _, p := range []string{exe, configPath} {
		if !filepath.IsAbs(p) {
			return "", fmt.Errorf("node runtime unit: %q is not an absolute path", p)
		}
	}
	words := append([]string{exe}, ForegroundArgs(configPath)...)
	quoted := make([]string, len(words))
	for i, w := range words {
		q, err := quoteExecWord(w)
		if err != nil {
			return "", err
		}
		quoted[i] = q
	}
	return fmt.Sprintf(unitTemplate, strings.Join(quoted, " ")), nil
}

// quoteExecWord writes w so that systemd's ExecStart= parser gives it back
// unchanged: % starts a specifier and $ a variable everywhere, and a word
// with blanks, quotes, backslashes or semicolons needs double quotes.
func quoteExecWord(w string) (string, error) {
	if strings.ContainsFunc(w, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", fmt.Errorf("node runtime unit: %q has a control character", w)
	}
	w = strings.NewReplacer("%", "%%", "$", "$$").Replace(w)
	if w != "" && !strings.ContainsAny(w, " \t\"'\\;") {
		return w, nil
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(w) + `"`, nil
}
