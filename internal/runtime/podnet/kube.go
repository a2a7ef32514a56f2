package podnet

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
)

// AnnotationPodCIDR is where a node's agent announces the node's pod
// subnet. The node's spec.podCIDR is the controller manager's to allocate
// (and NodeRestriction keeps kubelets from setting it), so the agent, which
// speaks with the kubelet's credentials, uses an annotation.
const AnnotationPodCIDR = "gravitational.io/pod-cidr"

// PeerFromNode reads a Peer from a Node: its InternalIP and the pod subnet
// it announced (or spec.podCIDR, when something allocated one). Missing or
// malformed fields are left zero for Desired to report.
func PeerFromNode(n *corev1.Node) Peer {
	p := Peer{Name: n.Name}
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
			p.IP = ip
			break
		}
	}
	cidr := n.Annotations[AnnotationPodCIDR]
	if cidr == "" {
		cidr = n.Spec.PodCIDR
	}
	if pfx, err := netip.ParsePrefix(cidr); err == nil {
		p.PodCIDR = pfx
	}
	return p
}

// announcePatch is the merge patch that sets the node's annotation.
func announcePatch(podCIDR netip.Prefix) []byte {
	return fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, AnnotationPodCIDR, podCIDR.String())
}
