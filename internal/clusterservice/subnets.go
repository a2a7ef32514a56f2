package clusterservice

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/runtime/podnet"
)

// subnetsName is the ConfigMap of pod subnets the cluster handed out, by
// node address: what a Node's announcement does not show yet (a node
// still joining) is taken all the same.
const subnetsName = "gravity-pod-subnets"

// FreeSubnet is the lowest /24 of podCIDR that is not in used.
func FreeSubnet(podCIDR string, used map[string]bool) (string, error) {
	pfx, err := netip.ParsePrefix(podCIDR)
	if err != nil || !pfx.Addr().Is4() || pfx.Bits() > 24 || pfx.Masked() != pfx {
		return "", fmt.Errorf("pod network %q: not an IPv4 CIDR of /24 or larger", podCIDR)
	}
	a := pfx.Addr().As4()
	base := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8
	for i := uint32(0); i < 1<<(24-pfx.Bits()); i++ {
		n := base + i<<8
		sub := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), 0}), 24).String()
		if !used[sub] {
			return sub, nil
		}
	}
	return "", fmt.Errorf("pod network %s: every /24 is taken", podCIDR)
}

// allocateSubnet gives ip a pod subnet: the one it holds already, else the
// lowest free one, recorded in the ConfigMap with optimistic concurrency
// (a second master allocating at the same time makes this retry).
func (s *Service) allocateSubnet(ctx context.Context, ip string, nodes []corev1.Node) (string, error) {
	cms := s.cfg.Clients.Kube.ConfigMaps(cluster.Namespace)
	for range 5 {
		cm, err := cms.Get(ctx, subnetsName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: subnetsName, Namespace: cluster.Namespace}}
			if cm, err = cms.Create(ctx, cm, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
				continue
			}
		}
		if err != nil {
			return "", fmt.Errorf("reading pod subnets: %w", err)
		}
		if sub, ok := cm.Data[ip]; ok {
			return sub, nil
		}
		used := map[string]bool{s.cfg.Self.NodePodCIDR: true}
		for _, sub := range cm.Data {
			used[sub] = true
		}
		for _, n := range nodes {
			if sub := n.Annotations[podnet.AnnotationPodCIDR]; sub != "" {
				used[sub] = true
			}
		}
		sub, err := FreeSubnet(s.cfg.Self.PodCIDR, used)
		if err != nil {
			return "", err
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[ip] = sub
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("recording pod subnet %s of %s: %w", sub, ip, err)
		}
		return sub, nil
	}
	return "", fmt.Errorf("allocating a pod subnet for %s: too many concurrent changes", ip)
}

// releaseSubnet frees ip's pod subnet.
func (s *Service) releaseSubnet(ctx context.Context, ip string) error {
	cms := s.cfg.Clients.Kube.ConfigMaps(cluster.Namespace)
	for range 5 {
		cm, err := cms.Get(ctx, subnetsName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, ok := cm.Data[ip]; !ok {
			return nil
		}
		delete(cm.Data, ip)
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue
		}
		return err
	}
	return fmt.Errorf("releasing the pod subnet of %s: too many concurrent changes", ip)
}

// newID is an operation id.
func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
