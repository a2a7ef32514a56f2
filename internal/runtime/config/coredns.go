package config

import (
	"bytes"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// CoreDNS's objects are named as kubeadm names them, so that tools which
// look for the cluster DNS (kubectl cluster-info, dnsutils guides) find it.
const (
	DNSNamespace   = "kube-system"
	DNSName        = "coredns"
	DNSServiceName = "kube-dns"
	dnsUser        = 65532
)

// CoreDNSManifests are the objects that run the cluster DNS from image (the
// base image's CoreDNS): its service account and read-only RBAC, the
// Corefile as a ConfigMap, a Deployment of replicas pods and the kube-dns
// Service at DNSServiceIP. The pods run as non-root with no capabilities:
// port 53 is opened with the namespaced ip_unprivileged_port_start sysctl,
// which Pod Security's baseline allows.
func CoreDNSManifests(n Node, image string, replicas int32) ([]byte, error) {
	n, err := n.WithDefaults()
	if err != nil {
		return nil, err
	}
	corefile, err := Corefile(n)
	if err != nil {
		return nil, err
	}
	objects := []any{
		&corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: dnsMeta(DNSName)},
		dnsClusterRole(), dnsClusterRoleBinding(),
		&corev1.ConfigMap{TypeMeta: typeMeta("v1", "ConfigMap"), ObjectMeta: dnsMeta(DNSName),
			Data: map[string]string{"Corefile": string(corefile)}},
		dnsDeployment(image, replicas),
		dnsService(n),
	}
	var out bytes.Buffer
	for _, o := range objects {
		b, err := yaml.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("coredns manifests: %w", err)
		}
		out.WriteString("---\n")
		out.Write(b)
	}
	return out.Bytes(), nil
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

func dnsMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: DNSNamespace, Labels: dnsLabels()}
}

func dnsLabels() map[string]string { return map[string]string{"k8s-app": DNSServiceName} }

func dnsClusterRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "ClusterRole"),
		ObjectMeta: metav1.ObjectMeta{Name: "system:" + DNSName},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"endpoints", "services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		},
	}
}

func dnsClusterRoleBinding() *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
		ObjectMeta: metav1.ObjectMeta{Name: "system:" + DNSName},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:" + DNSName},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: DNSName, Namespace: DNSNamespace}},
	}
}

func dnsService(n Node) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   typeMeta("v1", "Service"),
		ObjectMeta: dnsMeta(DNSServiceName),
		Spec: corev1.ServiceSpec{
			Selector:  dnsLabels(),
			ClusterIP: n.DNSServiceIP().String(),
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(53)},
			},
		},
	}
}

func dnsDeployment(image string, replicas int32) *appsv1.Deployment {
	spec := dnsPodSpec(image)
	// Spread replicas over nodes: one node's loss must not take DNS along.
	spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 100,
			PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: "kubernetes.io/hostname",
				LabelSelector: &metav1.LabelSelector{MatchLabels: dnsLabels()}}}},
	}}
	one := intstr.FromInt32(1)
	return &appsv1.Deployment{
		TypeMeta:   typeMeta("apps/v1", "Deployment"),
		ObjectMeta: dnsMeta(DNSName),
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: dnsLabels()},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &one}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: dnsLabels()}, Spec: spec},
		},
	}
}

func dnsPodSpec(image string) corev1.PodSpec {
	uid, no, yes := int64(dnsUser), false, true
	probe := func(path string, port int32) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Port: intstr.FromInt32(port), Scheme: corev1.URISchemeHTTP}},
			PeriodSeconds: 5, TimeoutSeconds: 2, FailureThreshold: 3}
	}
	return corev1.PodSpec{
		ServiceAccountName: DNSName,
		PriorityClassName:  "system-cluster-critical",
		// CoreDNS must not ask itself: it uses the node's resolv.conf,
		// which kubelet generates with no upstream unless one is configured.
		DNSPolicy:    corev1.DNSDefault,
		NodeSelector: map[string]string{"kubernetes.io/os": "linux"},
		Tolerations: []corev1.Toleration{
			{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists},
			{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule},
		},
		SecurityContext: &corev1.PodSecurityContext{
			RunAsUser: &uid, RunAsGroup: &uid, RunAsNonRoot: &yes,
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			Sysctls:        []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "53"}},
		},
		Containers: []corev1.Container{{
			Name: DNSName, Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
			Args: []string{"-conf", "/etc/coredns/Corefile"},
			Ports: []corev1.ContainerPort{
				{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
				{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP},
			},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("70Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("170Mi")},
			},
			VolumeMounts:   []corev1.VolumeMount{{Name: "config", MountPath: "/etc/coredns", ReadOnly: true}},
			LivenessProbe:  probe("/health", 8080),
			ReadinessProbe: probe("/ready", 8181),
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes,
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}},
		Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: DNSName}}}}},
	}
}
