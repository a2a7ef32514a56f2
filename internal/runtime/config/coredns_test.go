package config

import (
	"bytes"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func TestCoreDNSManifests(t *testing.T) {
	n := testMaster()
	const image = RegistryAddr + "/gravitational/coredns:1.15.0"
	out, err := CoreDNSManifests(n, image, 2)
	if err != nil {
		t.Fatal(err)
	}
	docs := bytes.Split(out, []byte("---\n"))[1:]
	kinds := []string{}
	var dep appsv1.Deployment
	var svc corev1.Service
	var cm corev1.ConfigMap
	for _, d := range docs {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal(d, &meta); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, meta.Kind)
		target := map[string]any{"Deployment": &dep, "Service": &svc, "ConfigMap": &cm}[meta.Kind]
		if target != nil {
			if err := yaml.UnmarshalStrict(d, target); err != nil {
				t.Fatalf("%s: %v", meta.Kind, err)
			}
		}
	}
	if got := strings.Join(kinds, ","); got != "ServiceAccount,ClusterRole,ClusterRoleBinding,ConfigMap,Deployment,Service" {
		t.Errorf("kinds %s", got)
	}
	if svc.Spec.ClusterIP != "10.100.0.10" || svc.Name != "kube-dns" || svc.Namespace != "kube-system" {
		t.Errorf("service %s/%s at %s", svc.Namespace, svc.Name, svc.Spec.ClusterIP)
	}
	if !strings.Contains(cm.Data["Corefile"], "registry.local") || strings.Contains(cm.Data["Corefile"], "forward") {
		t.Errorf("Corefile:\n%s", cm.Data["Corefile"])
	}
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	switch {
	case *dep.Spec.Replicas != 2:
		t.Errorf("replicas %d", *dep.Spec.Replicas)
	case c.Image != image:
		t.Errorf("image %s", c.Image)
	case pod.HostNetwork || pod.DNSPolicy != corev1.DNSDefault:
		t.Errorf("hostNetwork %v, dnsPolicy %s", pod.HostNetwork, pod.DNSPolicy)
	case pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot || *pod.SecurityContext.RunAsUser == 0:
		t.Error("CoreDNS may run as root")
	case len(c.SecurityContext.Capabilities.Add) != 0 || c.SecurityContext.Capabilities.Drop[0] != "ALL":
		t.Errorf("capabilities %+v", c.SecurityContext.Capabilities)
	case !selects(dep.Spec.Selector.MatchLabels, dep.Spec.Template.Labels) || !selects(svc.Spec.Selector, dep.Spec.Template.Labels):
		t.Error("selectors do not match the pods")
	}
}

func selects(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

func TestCoreDNSManifestsBadNode(t *testing.T) {
	n := testMaster()
	n.ServiceCIDR = "10.100.0.0/30"
	if _, err := CoreDNSManifests(n, "x", 1); err == nil {
		t.Error("a service CIDR without room for the DNS address was accepted")
	}
}
