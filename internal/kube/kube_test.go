package kube_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	"github.com/opengravity/gravity/internal/kube"
	"github.com/opengravity/gravity/internal/kube/kubefake"
)

func TestResource(t *testing.T) {
	ctx := context.Background()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{"role": "master"}}}
	c, _ := kubefake.NewClient(node)

	got, err := c.Nodes().Get(ctx, "a", metav1.GetOptions{})
	if err != nil || got.Labels["role"] != "master" {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := c.Nodes().Get(ctx, "b", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get of a missing node: %v", err)
	}
	patched, err := c.Nodes().Patch(ctx, "a", types.MergePatchType, []byte(`{"metadata":{"annotations":{"x":"y"}}}`), metav1.PatchOptions{})
	if err != nil || patched.Annotations["x"] != "y" {
		t.Errorf("patch: %+v %v", patched, err)
	}

	jobs := c.Jobs("ns")
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "j", Namespace: "ns", Labels: map[string]string{"hook": "install"}}}
	if _, err := jobs.Create(ctx, j, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.Create(ctx, j, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second create: %v", err)
	}
	j.Labels["hook"] = "update"
	if _, err := jobs.Update(ctx, j, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	list, err := jobs.List(ctx, metav1.ListOptions{LabelSelector: "hook=update"})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "j" {
		t.Fatalf("list: %+v %v", list, err)
	}
	if list, _ := jobs.List(ctx, metav1.ListOptions{LabelSelector: "hook=install"}); len(list.Items) != 0 {
		t.Errorf("the selector was not applied: %+v", list.Items)
	}
	if err := jobs.Delete(ctx, "j", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := jobs.Delete(ctx, "j", metav1.DeleteOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("second delete: %v", err)
	}
}

// TestConversion: what a typed object holds survives the trip through
// unstructured JSON, bytes included.
func TestConversion(t *testing.T) {
	ctx := context.Background()
	c, _ := kubefake.NewClient()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"}, Data: map[string][]byte{"token": []byte("t0k\x00")}}
	if _, err := c.Secrets("ns").Create(ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Secrets("ns").Get(ctx, "s", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data["token"]) != "t0k\x00" {
		t.Errorf("data %q", got.Data)
	}
}

func TestWatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _ := kubefake.NewClient()
	w, err := c.Nodes().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := c.Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-w.ResultChan():
		n, ok := e.Object.(*corev1.Node)
		if e.Type != watch.Added || !ok || n.Name != "a" {
			t.Errorf("event %s %T", e.Type, e.Object)
		}
	case <-ctx.Done():
		t.Fatal("no event")
	}
}

// TestPodLogs: logs come from the pod's log subresource, following it.
func TestPodLogs(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/namespaces/ns/pods/p/log" || r.URL.Query().Get("container") != "c" ||
			r.URL.Query().Get("follow") != "true" {
			http.Error(w, r.URL.String(), http.StatusNotFound)
			return
		}
		_, _ = io.WriteString(w, "hello\n")
	}))
	defer srv.Close()
	c, logs, err := podLogs(t, &rest.Config{Host: srv.URL})
	if logs != "hello\n" || err != nil {
		t.Errorf("logs %q (%v)", logs, err)
	}
	if _, err := c.PodLogs(context.Background(), "ns", "other", "c", true); err == nil {
		t.Error("a missing pod's logs streamed")
	}
}

// TestPodLogsOutlastRequestTimeout: a followed log lasts as long as its
// container, longer than the request timeout of object calls.
func TestPodLogsOutlastRequestTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		time.Sleep(300 * time.Millisecond)
		_, _ = io.WriteString(w, "last\n")
	}))
	defer srv.Close()
	if _, logs, err := podLogs(t, &rest.Config{Host: srv.URL, Timeout: 100 * time.Millisecond}); logs != "first\nlast\n" || err != nil {
		t.Errorf("logs %q (%v), want both lines", logs, err)
	}
}

// podLogs follows pod ns/p's container c through a client for rc, to its
// end, and returns the client too.
func podLogs(t *testing.T, rc *rest.Config) (*kube.Client, string, error) {
	t.Helper()
	c, err := kube.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.PodLogs(context.Background(), "ns", "p", "c", true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	return c, string(b), err
}
