package cluster

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestEvictable: a drain moves what a controller recreates elsewhere, not
// a DaemonSet's pods, static pods or pods that have finished.
func TestEvictable(t *testing.T) {
	yes := true
	owned := func(kind string, controller *bool) []metav1.OwnerReference {
		return []metav1.OwnerReference{{Kind: kind, Name: "x", Controller: controller}}
	}
	tests := []struct {
		name string
		pod  corev1.Pod
		want bool
	}{
		{"a ReplicaSet's pod", corev1.Pod{ObjectMeta: metav1.ObjectMeta{OwnerReferences: owned("ReplicaSet", &yes)}}, true},
		{"a bare pod, which nothing would start again", corev1.Pod{}, false},
		{"a Job's pod", corev1.Pod{ObjectMeta: metav1.ObjectMeta{OwnerReferences: owned("Job", &yes)}}, true},
		{"a DaemonSet's pod", corev1.Pod{ObjectMeta: metav1.ObjectMeta{OwnerReferences: owned("DaemonSet", &yes)}}, false},
		{"an owner that is not the controller", corev1.Pod{ObjectMeta: metav1.ObjectMeta{OwnerReferences: owned("ReplicaSet", nil)}}, false},
		{"a static pod's mirror", corev1.Pod{ObjectMeta: metav1.ObjectMeta{OwnerReferences: owned("Node", &yes)}}, false},
		{"a finished Job pod", corev1.Pod{ObjectMeta: metav1.ObjectMeta{OwnerReferences: owned("Job", &yes)}, Status: corev1.PodStatus{Phase: corev1.PodSucceeded}}, false},
		{"a failed pod", corev1.Pod{ObjectMeta: metav1.ObjectMeta{OwnerReferences: owned("ReplicaSet", &yes)}, Status: corev1.PodStatus{Phase: corev1.PodFailed}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Evictable(tt.pod); got != tt.want {
				t.Errorf("Evictable = %v, want %v", got, tt.want)
			}
		})
	}
}
