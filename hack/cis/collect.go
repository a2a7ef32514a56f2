package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"sigs.k8s.io/yaml"
)

// components are the processes the CIS rules read as control-plane Pods:
// each runs through its link named after it (kube-apiserver → kube), so
// argv[0] is what the rules match on.
var components = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kubelet", "kube-proxy"}

// node is what the collector found on this node.
type node struct {
	Pods     []map[string]any `json:"pods"`
	NodeInfo []map[string]any `json:"nodeInfo"`
	// Sources says where each NodeInfo key was read from, for the report.
	Sources map[string]string `json:"sources"`
}

// collect reads the running components' command lines from /proc and the
// files the CIS rules ask about from the node's state directory.
func collect(root, stateDir string) (*node, error) {
	n := &node{Sources: map[string]string{}}
	argv, err := runningComponents(root)
	if err != nil {
		return nil, err
	}
	for _, name := range components {
		args, ok := argv[name]
		if !ok {
			continue
		}
		n.Pods = append(n.Pods, map[string]any{
			"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": name, "namespace": "kube-system",
				"labels": map[string]string{"component": name, "tier": "control-plane"}},
			"spec": map[string]any{"containers": []any{map[string]any{"name": name, "image": name, "command": args}}},
		})
	}
	info, err := n.nodeInfo(root, stateDir, argv["kubelet"])
	if err != nil {
		return nil, err
	}
	// A node that is master and worker at once is both to the rules.
	for _, typ := range []string{"master", "worker"} {
		n.NodeInfo = append(n.NodeInfo, map[string]any{"apiVersion": "v1", "kind": "NodeInfo", "type": typ, "info": info})
	}
	return n, nil
}

// runningComponents maps each component's name to its command line; a
// supervised kubelet runs through `gravity runtime kubelet-exec -- …`,
// whose exec leaves kubelet's own argv.
func runningComponents(root string) (map[string][]string, error) {
	procs, err := os.ReadDir(filepath.Join(root, "proc"))
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(root, "proc", p.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if name := filepath.Base(args[0]); slices.Contains(components, name) {
			out[name] = args
		}
	}
	return out, nil
}

// nodeInfo fills the node collector's keys (trivy-checks'
// commands/kubernetes) from this node's files: the CIS benchmark names
// kubeadm's paths; these are gravity's files that play each part.
func (n *node) nodeInfo(root, stateDir string, kubeletArgs []string) (map[string]any, error) {
	info := map[string]any{}
	secrets := filepath.Join(stateDir, "secrets")
	kc := func(name string) string { return filepath.Join(secrets, "kubeconfig", name+".conf") }
	cfg := filepath.Join(stateDir, "config")
	// The runtime's node config is what the control plane's "pod
	// specifications" are generated from.
	spec := filepath.Join(cfg, "node.yaml")
	service := "/etc/systemd/system/gravity-runtime.service"
	if _, err := os.Stat(filepath.Join(root, service)); err != nil {
		service = spec // no systemd: the daemon runs from the node config
	}
	files := map[string][]string{
		"adminConfFile":                      {kc("admin")},
		"certificateAuthoritiesFile":         {filepath.Join(secrets, "ca.crt")},
		"controllerManagerConfFile":          {kc("controller-manager")},
		"schedulerConfFile":                  {kc("scheduler")},
		"kubeconfigFileExists":               {kc("kube-proxy")},
		"kubeletConfFile":                    {kc("kubelet")},
		"kubeletConfigYamlConfigurationFile": {filepath.Join(cfg, "kubelet.yaml")},
		"kubeletServiceFile":                 {service},
		"kubeAPIServerSpecFile":              {spec},
		"etcdDataDirectory":                  {filepath.Join(stateDir, "etcd")},
	}
	for key, paths := range files {
		perms, owners, err := stat(root, paths)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		// The collector's keys are not uniform: some say Permission,
		// some Permissions.
		for _, pk := range []string{key + "Permissions", key + "Permission"} {
			info[pk] = values(perms)
			n.Sources[pk] = strings.Join(paths, " ")
		}
		info[key+"Ownership"] = values(owners)
		n.Sources[key+"Ownership"] = strings.Join(paths, " ")
	}
	keys, certs, err := pkiFiles(root, secrets)
	if err != nil {
		return nil, err
	}
	keyPerms, _, err := stat(root, keys)
	if err != nil {
		return nil, err
	}
	certPerms, _, err := stat(root, certs)
	if err != nil {
		return nil, err
	}
	_, dirOwners, err := stat(root, append(slices.Clone(keys), certs...))
	if err != nil {
		return nil, err
	}
	info["kubePKIKeyFilePermissions"] = values(keyPerms)
	info["kubernetesPKICertificateFilePermissions"] = values(certPerms)
	info["kubePKIDirectoryFileOwnership"] = values(dirOwners)
	for _, k := range []string{"kubePKIKeyFilePermissions", "kubernetesPKICertificateFilePermissions", "kubePKIDirectoryFileOwnership"} {
		n.Sources[k] = secrets
	}
	if err := n.kubeletInfo(root, info, kubeletArgs); err != nil {
		return nil, err
	}
	return info, nil
}

// kubeletInfo fills the kubelet keys from its command line and, where the
// command line has no such flag, its --config file, by the collector's
// own mapping (commands/config/kubelet_mapping.yaml).
func (n *node) kubeletInfo(root string, info map[string]any, args []string) error {
	flag := func(name string) (string, bool) {
		for i, a := range args {
			if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
				return v, true
			}
			if a == "--"+name && i+1 < len(args) {
				return args[i+1], true
			}
		}
		return "", false
	}
	path, ok := flag("config")
	if !ok {
		return nil // no kubelet here: its keys stay absent and its checks count as skipped
	}
	raw, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	get := func(path ...string) (any, bool) {
		var v any = cfg
		for _, p := range path {
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[p]; !ok {
				return nil, false
			}
		}
		return v, true
	}
	for key, m := range map[string]struct {
		flag string
		cfg  []string
		def  string // kubelet's default when neither sets it
	}{
		"kubeletAnonymousAuthArgumentSet":                  {"anonymous-auth", []string{"authentication", "anonymous", "enabled"}, "true"},
		"kubeletAuthorizationModeArgumentSet":              {"authorization-mode", []string{"authorization", "mode"}, "AlwaysAllow"},
		"kubeletClientCaFileArgumentSet":                   {"client-ca-file", []string{"authentication", "x509", "clientCAFile"}, ""},
		"kubeletReadOnlyPortArgumentSet":                   {"read-only-port", []string{"readOnlyPort"}, "0"},
		"kubeletStreamingConnectionIdleTimeoutArgumentSet": {"streaming-connection-idle-timeout", []string{"streamingConnectionIdleTimeout"}, "4h0m0s"},
		"kubeletProtectKernelDefaultsArgumentSet":          {"protect-kernel-defaults", []string{"protectKernelDefaults"}, "false"},
		"kubeletMakeIptablesUtilChainsArgumentSet":         {"make-iptables-util-chains", []string{"makeIPTablesUtilChains"}, "true"},
		"kubeletEventQpsArgumentSet":                       {"event-qps", []string{"eventRecordQPS"}, "50"},
		"kubeletRotateCertificatesArgumentSet":             {"rotate-certificates", []string{"rotateCertificates"}, "false"},
		"kubeletRotateKubeletServerCertificateArgumentSet": {"rotate-server-certificates", []string{"serverTLSBootstrap"}, "false"},
		"kubeletTlsCertFileTlsArgumentSet":                 {"tls-cert-file", []string{"tlsCertFile"}, ""},
		"kubeletTlsPrivateKeyFileArgumentSet":              {"tls-private-key-file", []string{"tlsPrivateKeyFile"}, ""},
		"kubeletOnlyUseStrongCryptographic":                {"tls-cipher-suites", []string{"tlsCipherSuites"}, ""},
		"kubeletHostnameOverrideArgumentSet":               {"hostname-override", nil, ""},
	} {
		v, ok := flag(m.flag)
		src := "--" + m.flag
		if !ok && m.cfg != nil {
			if c, found := get(m.cfg...); found {
				v, ok, src = scalar(c), true, path+": "+strings.Join(m.cfg, ".")
			}
		}
		if !ok {
			if m.def == "" {
				info[key] = map[string]any{"values": []any{}}
				n.Sources[key] = "not set"
				continue
			}
			v, src = m.def, "kubelet's default"
		}
		var vs []any
		for _, one := range strings.Split(v, ",") {
			vs = append(vs, typed(one))
		}
		info[key] = values(vs)
		n.Sources[key] = src
	}
	return nil
}

// typed is a value as the node collector reports it: numbers as numbers,
// anything else as a string.
func typed(s string) any {
	if i, err := strconv.Atoi(s); err == nil {
		return i
	}
	return s
}

func scalar(v any) string {
	switch t := v.(type) {
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ",")
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// pkiFiles lists the keys and certificates under the PKI directory.
func pkiFiles(root, dir string) (keys, certs []string, err error) {
	err = filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = "/" + rel
		switch filepath.Ext(path) {
		case ".key":
			keys = append(keys, rel)
		case ".crt":
			certs = append(certs, rel)
		}
		return nil
	})
	return keys, certs, err
}

// stat gives each path's mode as the collector reports it (stat -c %a:
// 600 as the number 600) and its owner as user:group names.
func stat(root string, paths []string) (perms, owners []any, err error) {
	for _, p := range paths {
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			return nil, nil, err
		}
		mode, _ := strconv.Atoi(strconv.FormatUint(uint64(fi.Mode().Perm()), 8))
		perms = append(perms, mode)
		st := fi.Sys().(*syscall.Stat_t)
		owners = append(owners, name(root, "passwd", st.Uid)+":"+name(root, "group", st.Gid))
	}
	return perms, owners, nil
}

// name looks an id up in the node's /etc/passwd or /etc/group.
func name(root, db string, id uint32) string {
	raw, _ := os.ReadFile(filepath.Join(root, "etc", db))
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 2 && f[2] == strconv.Itoa(int(id)) {
			return f[0]
		}
	}
	return strconv.Itoa(int(id))
}

func values(v []any) map[string]any { return map[string]any{"values": v} }
