package hook

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"

	"github.com/opengravity/gravity/internal/kube/kubefake"
)

func seedJob() *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "install", Namespace: "default", Labels: map[string]string{"mine": "yes"}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyOnFailure,
			Containers: []corev1.Container{{Name: "install", Image: "registry.local:5000/gravitational/debian-tall:stretch",
				Command: []string{"/usr/local/bin/helm", "install", "/var/lib/gravity/resources/charts/alpine"}}},
		}}},
	}
}

func spec() Spec {
	return Spec{Job: seedJob(), Hook: "install", App: "cluster-image", Name: "cluster-image-install-abc", Namespace: "kube-system",
		ResourcesImage:   "registry.local:5000/gravitational/cluster-image-resources:0.0.1",
		ResourcesSubPath: "resources", ToolsImage: "registry.local:5000/gravitational/hook-tools:0.1.0",
		Env: map[string]string{"GRAVITY_APP_NAME": "cluster-image"}, OperationID: "op1"}
}

func TestJobObject(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Spec)
		check func(t *testing.T, j *batchv1.Job)
	}{
		{name: "job's own limits", edit: func(s *Spec) {
			zero, hour := int32(0), int64(3600)
			s.Job.Spec.BackoffLimit, s.Job.Spec.ActiveDeadlineSeconds = &zero, &hour
		}, check: func(t *testing.T, j *batchv1.Job) {
			if *j.Spec.BackoffLimit != 0 || *j.Spec.ActiveDeadlineSeconds != 3600 {
				t.Errorf("backoff %d deadline %d: want the Job's 0 and 3600", *j.Spec.BackoffLimit, *j.Spec.ActiveDeadlineSeconds)
			}
		}},
		{name: "seed job", check: func(t *testing.T, j *batchv1.Job) {
			if j.Name != "cluster-image-install-abc" || j.Namespace != "default" {
				t.Errorf("name %s/%s", j.Namespace, j.Name)
			}
			if *j.Spec.BackoffLimit != DefaultBackoffLimit || *j.Spec.ActiveDeadlineSeconds != int64(DefaultDeadline/time.Second) {
				t.Errorf("backoff %d deadline %d", *j.Spec.BackoffLimit, *j.Spec.ActiveDeadlineSeconds)
			}
			pod := j.Spec.Template.Spec
			if pod.ServiceAccountName != "" {
				t.Errorf("service account %q: Run makes one per run", pod.ServiceAccountName)
			}
			mounts := map[string]corev1.VolumeMount{}
			for _, m := range pod.Containers[0].VolumeMounts {
				mounts[m.MountPath] = m
			}
			if m := mounts[ResourcesDir]; m.SubPath != "resources" || !m.ReadOnly {
				t.Errorf("resources mount %+v", m)
			}
			if m := mounts[ToolsDir]; m.SubPath != "bin" {
				t.Errorf("tools mount %+v", m)
			}
			for _, v := range pod.Volumes {
				if v.HostPath != nil || v.Image == nil {
					t.Errorf("volume %s is not an image volume", v.Name)
				}
			}
			if j.Labels["mine"] != "yes" || j.Labels[LabelOperation] != "op1" || j.Labels[LabelApp] != "cluster-image" {
				t.Errorf("labels %v", j.Labels)
			}
			if env := pod.Containers[0].Env; len(env) != 1 || env[0].Name != "GRAVITY_APP_NAME" {
				t.Errorf("env %v", env)
			}
		}},
		{name: "job without namespace gets the default", edit: func(s *Spec) { s.Job.Namespace = "" },
			check: func(t *testing.T, j *batchv1.Job) {
				if j.Namespace != "kube-system" {
					t.Errorf("namespace %q", j.Namespace)
				}
			}},
		{name: "manifest's service account narrows the hook", edit: func(s *Spec) { s.Job.Spec.Template.Spec.ServiceAccountName = "narrow" },
			check: func(t *testing.T, j *batchv1.Job) {
				if sa := j.Spec.Template.Spec.ServiceAccountName; sa != "narrow" {
					t.Errorf("service account %q", sa)
				}
			}},
		{name: "selector dropped", edit: func(s *Spec) {
			s.Job.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}
		}, check: func(t *testing.T, j *batchv1.Job) {
			if j.Spec.Selector != nil {
				t.Error("selector kept: the API server would refuse it")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := spec()
			if tc.edit != nil {
				tc.edit(&s)
			}
			j, err := s.JobObject()
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, j)
		})
	}
	if _, err := (Spec{Job: &batchv1.Job{}}).JobObject(); err == nil {
		t.Error("a job without containers was accepted")
	}
}

// TestAdopt: a resumed install follows the earlier run of the hook when
// it completed or still runs, and runs the hook again after a failure.
func TestAdopt(t *testing.T) {
	s := spec()
	for _, tc := range []struct {
		name string
		cond batchv1.JobConditionType
		want bool
	}{
		{name: "running", want: true},
		{name: "complete", cond: batchv1.JobComplete, want: true},
		{name: "failed", cond: batchv1.JobFailed, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, _ := s.JobObject()
			if tc.cond != "" {
				j.Status.Conditions = []batchv1.JobCondition{{Type: tc.cond, Status: corev1.ConditionTrue}}
			}
			cs, _ := kubefake.NewClient(j)
			got, err := adopt(context.Background(), cs, s, "default")
			if err != nil {
				t.Fatal(err)
			}
			if (got != nil) != tc.want {
				t.Fatalf("adopted %v, want %v", got != nil, tc.want)
			}
			other := s
			other.OperationID = "op2"
			if got, _ := adopt(context.Background(), cs, other, "default"); got != nil {
				t.Error("adopted another operation's job")
			}
		})
	}
}

// TestRunFollowsAdopted: Run follows an earlier run's Job to its end and
// streams its started containers' logs (which the fake cannot serve, so
// the reason is written instead).
func TestRunFollowsAdopted(t *testing.T) {
	s := spec()
	j, _ := s.JobObject()
	j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default",
		Labels: map[string]string{"batch.kubernetes.io/job-name": j.Name}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "install",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}}}}}
	cs, _ := kubefake.NewClient(j, pod)
	var logs strings.Builder
	if err := Run(context.Background(), cs, s, &logs); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(logs.String(), "(logs of p/install: ") {
		t.Errorf("logs %q", logs.String())
	}
}

func TestFinished(t *testing.T) {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "h", Namespace: "ns"}}
	if done, _ := finished(j); done {
		t.Error("no condition is done")
	}
	j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "too many"}}
	if done, err := finished(j); !done || err == nil || !strings.Contains(err.Error(), "BackoffLimitExceeded") {
		t.Errorf("failed job: %v %v", done, err)
	}
}

// TestFollowersConcurrentAndBounded: each started container is followed in
// its own goroutine, once, and stop ends a log that never does after the
// drain time, with what it wrote already printed.
func TestFollowersConcurrentAndBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, "%s started\n", r.URL.Query().Get("container"))
		w.(http.Flusher).Flush()
		<-r.Context().Done() // a container that never ends
	}))
	defer srv.Close()
	j, _ := spec().JobObject()
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: j.Namespace,
		Labels: map[string]string{"batch.kubernetes.io/job-name": j.Name}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
			{Name: "one", State: running}, {Name: "two", State: running}, {Name: "waiting"}}}}
	cs, _ := kubefake.NewClientWithLogs(&rest.Config{Host: srv.URL}, pod)
	var logs syncBuffer
	f := newFollowers(context.Background(), cs, &logs)
	f.followPods(j)
	f.followPods(j) // already followed: not again
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "one started") || !strings.Contains(logs.String(), "two started") {
		if time.Now().After(deadline) {
			t.Fatalf("both containers not followed at once: %q", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	f.stop(100 * time.Millisecond)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stop took %v with drain 100ms", d)
	}
	got := logs.String()
	if strings.Count(got, "started") != 2 || !strings.Contains(got, "one: one started\n") || strings.Contains(got, "waiting") {
		t.Errorf("logs %q: want each running container once, prefixed", got)
	}
}

// syncBuffer is a strings.Builder the test reads while followers write.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunFailedHookKeepsLogTail: a failed hook's error, which the plan
// keeps, ends with the last lines its containers logged.
func TestRunFailedHookKeepsLogTail(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 1; i <= 12; i++ {
			_, _ = fmt.Fprintf(w, "log line %02d\n", i)
		}
	}))
	defer srv.Close()
	s := spec()
	ns := s.Job.Namespace
	cs, _ := kubefake.NewClientWithLogs(&rest.Config{Host: srv.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The Job controller's part: the Job Run creates gets a pod that ran,
	// then fails.
	go func() {
		for ctx.Err() == nil {
			jobs, err := cs.Jobs(ns).List(ctx, metav1.ListOptions{})
			if err != nil || len(jobs.Items) == 0 {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			j := jobs.Items[0]
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: j.Name + "-x", Namespace: ns,
				Labels: map[string]string{"batch.kubernetes.io/job-name": j.Name}},
				Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "install",
					State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}}}}}
			if _, err := cs.Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Error(err)
				return
			}
			j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue,
				Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit"}}
			if _, err := cs.Jobs(ns).Update(ctx, &j, metav1.UpdateOptions{}); err != nil {
				t.Error(err)
			}
			return
		}
	}()
	err := Run(ctx, cs, s, io.Discard)
	if err == nil {
		t.Fatal("a failed hook succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, "BackoffLimitExceeded") || !strings.Contains(msg, "install: log line 03\n") ||
		!strings.HasSuffix(msg, "install: log line 12") || strings.Contains(msg, "log line 02") {
		t.Errorf("error %q: want the reason and the last 10 log lines", msg)
	}
}

func TestCheckServiceAccount(t *testing.T) {
	own := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app-installer", Namespace: "default"}}
	tests := []struct {
		name    string
		account string
		exists  bool
		wantErr string
	}{
		{name: "none named: an account of the run's own", account: ""},
		{name: "its own, present", account: "app-installer", exists: true},
		{name: "its own, missing", account: "app-installer", wantErr: "runs as service account app-installer, which namespace default does not have"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := spec()
			s.Job.Spec.Template.Spec.ServiceAccountName = tt.account
			var objs []runtime.Object
			if tt.exists {
				objs = append(objs, own)
			}
			cs, _ := kubefake.NewClient(objs...)
			j, err := s.JobObject()
			if err != nil {
				t.Fatal(err)
			}
			err = checkServiceAccount(context.Background(), cs, s, j)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if tt.wantErr == "" {
				return
			}
			// Run refuses it before creating anything.
			if err := Run(context.Background(), cs, s, io.Discard); err == nil {
				t.Fatal("Run created a hook whose pods cannot be")
			}
			if jobs, _ := cs.Jobs("default").List(context.Background(), metav1.ListOptions{}); len(jobs.Items) != 0 {
				t.Errorf("%d jobs created", len(jobs.Items))
			}
		})
	}
}

func TestJobName(t *testing.T) {
	a, b := JobName("cluster-image", "install"), JobName("cluster-image", "install")
	if a == b || !strings.HasPrefix(a, "cluster-image-install-") {
		t.Errorf("names %q %q: want unique, prefixed", a, b)
	}
	long := JobName(strings.Repeat("x", 80), "install")
	if len(long) > 63 || strings.HasPrefix(long, "-") {
		t.Errorf("long name %q", long)
	}
}

func TestTail(t *testing.T) {
	tb := NewTail(5)
	tb.Write([]byte("abc"))
	tb.Write([]byte("defgh"))
	if got := tb.String(); got != "defgh" {
		t.Errorf("tail %q", got)
	}
	if got := tb.Last(2); got != "gh" {
		t.Errorf("last %q", got)
	}
}
