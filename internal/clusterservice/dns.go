package clusterservice

import (
	"context"
	"fmt"
	"net"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/runtime/config"
)

// masterIPs are the control-plane nodes' addresses, sorted.
func (s *Service) masterIPs(ctx context.Context) ([]net.IP, error) {
	return cluster.MasterIPs(ctx, s.cfg.Clients)
}

// updateDNS makes registry.local answer with every master in the cluster
// DNS (CoreDNS reloads its Corefile when the ConfigMap changes).
func (s *Service) updateDNS(ctx context.Context) error {
	ips, err := s.masterIPs(ctx)
	if err != nil {
		return err
	}
	n := s.cfg.Self
	n.MasterIPs = ips
	corefile, err := config.Corefile(n)
	if err != nil {
		return err
	}
	cms := s.cfg.Clients.Kube.ConfigMaps("kube-system")
	cm, err := cms.Get(ctx, config.DNSName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading the cluster DNS configuration: %w", err)
	}
	if cm.Data["Corefile"] == string(corefile) {
		return nil
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data["Corefile"] = string(corefile)
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating the cluster DNS configuration: %w", err)
	}
	s.cfg.Log.Info("registry.local now answers with every master", "masters", fmt.Sprint(ips))
	return nil
}

// dnsReplicas is how many CoreDNS pods a cluster of more than one node
// runs, spread over nodes (the Deployment's anti-affinity): losing a node
// must not take the cluster's DNS along.
const dnsReplicas = 2

// scaleDNS grows CoreDNS to dnsReplicas once the cluster has that many
// nodes; it never shrinks it (an admin may have scaled it up).
func (s *Service) scaleDNS(ctx context.Context) error {
	nodes, err := s.cfg.Clients.Kube.Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	if len(nodes.Items) < dnsReplicas {
		return nil
	}
	deps := s.cfg.Clients.Kube.Deployments("kube-system")
	d, err := deps.Get(ctx, config.DNSName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil // no cluster DNS to scale (not installed yet, or removed)
	}
	if err != nil {
		return fmt.Errorf("reading the cluster DNS: %w", err)
	}
	if d.Spec.Replicas != nil && *d.Spec.Replicas >= dnsReplicas {
		return nil
	}
	patch := []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, dnsReplicas))
	if _, err := deps.Patch(ctx, config.DNSName, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("scaling the cluster DNS: %w", err)
	}
	s.cfg.Log.Info("cluster DNS scaled", "replicas", dnsReplicas)
	return nil
}
