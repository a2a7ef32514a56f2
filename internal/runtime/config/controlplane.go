package config

import (
	"fmt"

	"sigs.k8s.io/yaml"

	"github.com/opengravity/gravity/internal/pki"
)

// Names of the kubeconfigs Kubeconfigs writes (Paths.Kubeconfig).
const (
	KubeconfigAdmin             = "admin"
	KubeconfigControllerManager = "controller-manager"
	KubeconfigScheduler         = "scheduler"
	KubeconfigKubelet           = "kubelet"
	KubeconfigKubeProxy         = "kube-proxy"
	KubeconfigCSRApprover       = "csr-approver"
	KubeconfigClusterService    = "cluster-service"
)

// NodePortRange is the Services' NodePort range: Kubernetes' default
// cut short below 32009, where every master's cluster service serves the
// cluster management URL, so that no Service can take that port.
const NodePortRange = "30000-32000"

// Pod Security levels the admission configuration applies cluster-wide.
const (
	PodSecurityEnforce = "baseline"
	PodSecurityWarn    = "restricted"
)

func master(n Node, component string) (Node, error) {
	n, err := n.WithDefaults()
	if err != nil {
		return n, err
	}
	if !n.IsMaster() {
		return n, fmt.Errorf("%s: only masters run the control plane", component)
	}
	return n, nil
}

// APIServerArgs are kube-apiserver's flags on master n. It reaches etcd on
// loopback (its own member) with the etcd client certificate; anonymous
// requests are refused, so health probes must present a client
// certificate (the admin's, say).
func APIServerArgs(n Node) ([]string, error) {
	n, err := master(n, "kube-apiserver")
	if err != nil {
		return nil, err
	}
	p := n.Paths()
	ca := p.Cert(pki.ClusterCAName)
	return append([]string{
		"--advertise-address=" + n.IP.String(),
		"--bind-address=" + n.IP.String(),
		fmt.Sprintf("--secure-port=%d", APIServerPort),
		"--etcd-servers=" + httpsURL(loopback, EtcdClientPort),
		"--etcd-cafile=" + p.Cert(pki.EtcdCAName),
		"--etcd-certfile=" + p.Cert(pki.APIServerEtcdClient),
		"--etcd-keyfile=" + p.Key(pki.APIServerEtcdClient),
		"--tls-cert-file=" + p.Cert(pki.APIServer),
		"--tls-private-key-file=" + p.Key(pki.APIServer),
		"--client-ca-file=" + ca,
		"--anonymous-auth=false",
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction,EventRateLimit",
		"--admission-control-config-file=" + p.AdmissionConfig,
		"--allow-privileged=true",
		"--profiling=false",
		// Pods outlive a runtime stop (their shims are meant to survive
		// containerd) and keep watching the API: without this the server
		// waits for those watches until it is killed.
		"--shutdown-watch-termination-grace-period=2s",
		"--service-cluster-ip-range=" + n.ServiceCIDR,
		"--service-node-port-range=" + NodePortRange,
		"--service-account-issuer=https://kubernetes.default.svc." + n.ClusterDomain,
		"--service-account-key-file=" + p.SAPublicKey(),
		"--service-account-signing-key-file=" + p.Key(pki.ServiceAccountKeyName),
		"--kubelet-client-certificate=" + p.Cert(pki.APIServerKubeletClient),
		"--kubelet-client-key=" + p.Key(pki.APIServerKubeletClient),
		"--kubelet-certificate-authority=" + ca,
		"--kubelet-preferred-address-types=InternalIP",
		"--proxy-client-cert-file=" + p.Cert(pki.FrontProxyClient),
		"--proxy-client-key-file=" + p.Key(pki.FrontProxyClient),
		"--requestheader-client-ca-file=" + p.Cert(pki.FrontProxyCAName),
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--encryption-provider-config=" + p.EncryptionConfig,
		"--audit-policy-file=" + p.AuditPolicy,
		"--audit-log-path=" + p.AuditLog,
		fmt.Sprintf("--audit-log-maxsize=%d", AuditLogMaxSizeMB),
		fmt.Sprintf("--audit-log-maxbackup=%d", AuditLogMaxBackups),
		fmt.Sprintf("--audit-log-maxage=%d", AuditLogMaxAgeDays),
	}, kubeTLSFlags()...), nil
}

// The audit log's rotation: at most about a gigabyte of history on a
// master, a month at the longest. kube-apiserver creates each file 0600.
const (
	AuditLogMaxSizeMB  = 100
	AuditLogMaxBackups = 10
	AuditLogMaxAgeDays = 30
)

// AuditPolicy is kube-apiserver's audit policy: who did what, to which
// object, for every request, and what they sent for changes to RBAC (who
// may do what). Secrets, config maps and token requests are logged
// without their bodies, which carry secrets. Health probes, which a load
// balancer or the node's own probes send every second, and the
// RequestReceived stage, which only repeats the start of each request,
// are left out.
func AuditPolicy(n Node) ([]byte, error) {
	if _, err := master(n, "audit policy"); err != nil {
		return nil, err
	}
	type gr = map[string]any
	policy := map[string]any{
		"apiVersion": "audit.k8s.io/v1",
		"kind":       "Policy",
		"omitStages": []string{"RequestReceived"},
		"rules": []any{
			gr{"level": "None", "nonResourceURLs": []string{"/healthz*", "/livez*", "/readyz*"}},
			gr{"level": "Metadata", "resources": []any{
				gr{"group": "", "resources": []string{"secrets", "configmaps", "serviceaccounts/token"}},
				gr{"group": "authentication.k8s.io", "resources": []string{"tokenreviews"}},
			}},
			gr{"level": "RequestResponse", "verbs": []string{"create", "update", "patch", "delete", "deletecollection"},
				"resources": []any{gr{"group": "rbac.authorization.k8s.io"}}},
			gr{"level": "Metadata"},
		},
	}
	return marshalYAML("audit policy", policy)
}

// ControllerManagerArgs are kube-controller-manager's flags on master n.
// Node CIDRs are not allocated: the installer assigns each node its
// NodePodCIDR and the node agents program the routes.
func ControllerManagerArgs(n Node) ([]string, error) {
	n, err := master(n, "kube-controller-manager")
	if err != nil {
		return nil, err
	}
	p := n.Paths()
	kc := p.Kubeconfig(KubeconfigControllerManager)
	ca := p.Cert(pki.ClusterCAName)
	return append([]string{
		"--kubeconfig=" + kc,
		"--authentication-kubeconfig=" + kc,
		"--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1",
		"--leader-elect=true",
		"--cluster-name=" + n.ClusterName,
		"--cluster-cidr=" + n.PodCIDR,
		"--allocate-node-cidrs=false",
		"--service-cluster-ip-range=" + n.ServiceCIDR,
		"--client-ca-file=" + ca,
		"--requestheader-client-ca-file=" + p.Cert(pki.FrontProxyCAName),
		"--root-ca-file=" + ca,
		"--service-account-private-key-file=" + p.Key(pki.ServiceAccountKeyName),
		"--use-service-account-credentials=true",
		"--cluster-signing-cert-file=" + ca,
		"--cluster-signing-key-file=" + p.Key(pki.ClusterCAName),
		"--profiling=false",
		// Finished pods are collected past this many, not Kubernetes'
		// 12500, which a small appliance's etcd should not have to hold.
		"--terminated-pod-gc-threshold=1000",
		// On by default (beta) since 1.12; said explicitly, as the CIS
		// benchmark asks, since kubelets' serving certificates rotate.
		"--feature-gates=RotateKubeletServerCertificate=true",
	}, kubeTLSFlags()...), nil
}

// SchedulerArgs are kube-scheduler's flags on master n.
func SchedulerArgs(n Node) ([]string, error) {
	n, err := master(n, "kube-scheduler")
	if err != nil {
		return nil, err
	}
	kc := n.Paths().Kubeconfig(KubeconfigScheduler)
	return append([]string{
		"--kubeconfig=" + kc,
		"--authentication-kubeconfig=" + kc,
		"--authorization-kubeconfig=" + kc,
		"--bind-address=127.0.0.1",
		"--leader-elect=true",
		"--profiling=false",
	}, kubeTLSFlags()...), nil
}

// AdmissionConfig is the API server's --admission-control-config-file: Pod
// Security enforces PodSecurityEnforce and warns and audits at
// PodSecurityWarn in every namespace that does not label its own levels.
// kube-system is exempt: kube-proxy-like system pods need host access.
func AdmissionConfig(n Node) ([]byte, error) {
	if _, err := master(n, "admission config"); err != nil {
		return nil, err
	}
	cfg := map[string]any{
		"apiVersion": "apiserver.config.k8s.io/v1",
		"kind":       "AdmissionConfiguration",
		"plugins": []any{eventRateLimit(), map[string]any{
			"name": "PodSecurity",
			"configuration": map[string]any{
				"apiVersion": "pod-security.admission.config.k8s.io/v1",
				"kind":       "PodSecurityConfiguration",
				"defaults": map[string]string{
					"enforce": PodSecurityEnforce, "enforce-version": "latest",
					"audit": PodSecurityWarn, "audit-version": "latest",
					"warn": PodSecurityWarn, "warn-version": "latest",
				},
				"exemptions": map[string][]string{
					"usernames": {}, "runtimeClasses": {}, "namespaces": {"kube-system"},
				},
			},
		}},
	}
	return marshalYAML("admission config", cfg)
}

// eventRateLimit bounds how fast Events may be created, in all and per
// namespace, so that a crashing workload's events cannot flood the API
// server and etcd (CIS 1.2.9): far above what an install or a busy
// appliance makes, far below a loop.
func eventRateLimit() map[string]any {
	return map[string]any{
		"name": "EventRateLimit",
		"configuration": map[string]any{
			"apiVersion": "eventratelimit.admission.k8s.io/v1alpha1",
			"kind":       "Configuration",
			"limits": []any{
				map[string]any{"type": "Server", "qps": 500, "burst": 1000},
				map[string]any{"type": "Namespace", "qps": 100, "burst": 200, "cacheSize": 2000},
			},
		},
	}
}

func marshalYAML(what string, v any) ([]byte, error) {
	out, err := yaml.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}
