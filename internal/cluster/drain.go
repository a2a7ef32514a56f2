package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Cordon marks node name unschedulable (or schedulable again); a node
// that is gone needs neither.
func Cordon(ctx context.Context, c Clients, name string, unschedulable bool) error {
	patch := fmt.Appendf(nil, `{"spec":{"unschedulable":%t}}`, unschedulable)
	if _, err := c.Kube.Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("%s node %s: %w", map[bool]string{true: "cordoning", false: "uncordoning"}[unschedulable], name, err)
	}
	return nil
}

// drainRetry is how often an eviction a PodDisruptionBudget refused is
// asked again.
var drainRetry = 2 * time.Second

// Drain cordons node name and evicts its pods as kubectl drain does: the
// pods of DaemonSets (which would come back), static pods (which the API
// cannot move) and pods without a controller (which nothing would start
// again) stay, an eviction a PodDisruptionBudget refuses is
// asked again until the budget allows it, and Drain returns once every
// evicted pod is gone, or fails when timeout passes first, naming what
// is left.
func Drain(ctx context.Context, c Clients, name string, timeout time.Duration) error {
	if err := Cordon(ctx, c, name, true); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	evicted := map[types.UID]bool{}
	for {
		pods, err := c.Kube.Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + name})
		if err != nil {
			return fmt.Errorf("draining node %s: listing its pods: %w", name, err)
		}
		var left []string
		for _, p := range pods.Items {
			if !Evictable(p) {
				continue
			}
			left = append(left, p.Namespace+"/"+p.Name)
			if evicted[p.UID] {
				continue
			}
			err := c.Kube.Evict(ctx, p.Namespace, p.Name)
			switch {
			case err == nil, apierrors.IsNotFound(err):
				evicted[p.UID] = true
			case apierrors.IsTooManyRequests(err):
				// A disruption budget: the pod's replacement must be ready first.
			default:
				return fmt.Errorf("draining node %s: evicting pod %s/%s: %w", name, p.Namespace, p.Name, err)
			}
		}
		if len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("draining node %s: pods still there after %v (a PodDisruptionBudget that allows no disruption?): %s",
				name, timeout, strings.Join(left, ", "))
		case <-time.After(drainRetry):
		}
	}
}

// Evictable tells the pods a drain moves: those a controller other than
// a DaemonSet starts again elsewhere, and that have not finished. A pod
// no controller would bring back (kubectl drain deletes it only with
// --force) stays, as do a DaemonSet's and static pods: the runtime
// switch a drain comes before leaves running pods running.
func Evictable(p corev1.Pod) bool {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return false
	}
	c := metav1.GetControllerOf(&p)
	return c != nil && c.Kind != "DaemonSet" && c.Kind != "Node"
}
