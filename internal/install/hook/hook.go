// Package hook runs an application hook (a Kubernetes Job from the app
// manifest) the way Gravity did: with the app's resources at
// /var/lib/gravity/resources, helm and kubectl in /usr/local/bin and
// GRAVITY_* variables, its logs streamed to the caller. Tools and resources
// reach the pod as image volumes from the cluster registry, never through
// hostPath, so hooks pass Pod Security's baseline.
package hook

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opengravity/gravity/internal/kube"
)

// Where hooks find things, as in Gravity.
const (
	ResourcesDir = "/var/lib/gravity/resources"
	ToolsDir     = "/usr/local/bin"
	// toolsSubPath is the hook-tools image's directory with helm, kubectl
	// and a busybox shell.
	toolsSubPath = "bin"
	// LabelHook marks every hook Job with its hook name; LabelOperation
	// with the operation that ran it.
	LabelHook      = "gravitational.io/hook"
	LabelOperation = "gravitational.io/operation"
	LabelApp       = "gravitational.io/app"
)

// Spec is one run of a hook.
type Spec struct {
	Job            *batchv1.Job // as the app's manifest has it
	Hook           string       // "install", "update", …
	App            string       // the application the hook belongs to
	Name           string       // unique Job name for this run
	Namespace      string       // used when the Job names none
	ResourcesImage string       // the app's resources, mounted at ResourcesDir
	// ResourcesSubPath is the image's directory mounted there.
	ResourcesSubPath string
	ToolsImage       string // hook-tools, its bin/ mounted at ToolsDir
	Env              map[string]string
	OperationID      string
	// Deadline bounds the whole Job; BackoffLimit its retries. A failing
	// hook is reported in seconds rather than after Kubernetes' default
	// six retries with growing back-off.
	Deadline     time.Duration
	BackoffLimit int32
}

// Defaults for Spec.
const (
	DefaultDeadline     = 10 * time.Minute
	DefaultBackoffLimit = 1
)

// Job returns the Job to create for s.
func (s Spec) JobObject() (*batchv1.Job, error) {
	if s.Job == nil || len(s.Job.Spec.Template.Spec.Containers) == 0 {
		return nil, errors.New("hook job has no containers")
	}
	j := s.Job.DeepCopy()
	j.ObjectMeta = metav1.ObjectMeta{Name: s.Name, Namespace: j.Namespace, Labels: maps.Clone(j.Labels),
		Annotations: maps.Clone(j.Annotations)}
	if j.Namespace == "" {
		j.Namespace = s.Namespace
	}
	if j.Labels == nil {
		j.Labels = map[string]string{}
	}
	for k, v := range s.labels() {
		j.Labels[k] = v
	}
	// The Job's own limits stand, as Gravity kept them; the Spec's (or
	// the defaults) fill in what it leaves out.
	if j.Spec.ActiveDeadlineSeconds == nil {
		deadline := int64(orDefault(s.Deadline, DefaultDeadline) / time.Second)
		j.Spec.ActiveDeadlineSeconds = &deadline
	}
	if j.Spec.BackoffLimit == nil {
		backoff := s.BackoffLimit
		if backoff == 0 {
			backoff = DefaultBackoffLimit
		}
		j.Spec.BackoffLimit = &backoff
	}
	// Selectors and pod labels are generated per Job by the API server.
	j.Spec.Selector, j.Spec.ManualSelector = nil, nil
	j.Spec.Template.Labels = s.labels()
	s.addVolumes(&j.Spec.Template.Spec)
	return j, nil
}

// labels identify a hook run: one operation runs each app's hook once.
func (s Spec) labels() map[string]string {
	return map[string]string{LabelHook: s.Hook, LabelOperation: s.OperationID, LabelApp: s.App}
}

func (s Spec) addVolumes(pod *corev1.PodSpec) {
	var mounts []corev1.VolumeMount
	if s.ResourcesImage != "" {
		pod.Volumes = append(pod.Volumes, imageVolume("gravity-resources", s.ResourcesImage))
		mounts = append(mounts, corev1.VolumeMount{Name: "gravity-resources", MountPath: ResourcesDir, SubPath: s.ResourcesSubPath, ReadOnly: true})
	}
	if s.ToolsImage != "" {
		pod.Volumes = append(pod.Volumes, imageVolume("gravity-tools", s.ToolsImage))
		mounts = append(mounts, corev1.VolumeMount{Name: "gravity-tools", MountPath: ToolsDir, SubPath: toolsSubPath, ReadOnly: true})
	}
	env := []corev1.EnvVar{}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		env = append(env, corev1.EnvVar{Name: k, Value: s.Env[k]})
	}
	for _, list := range [][]corev1.Container{pod.InitContainers, pod.Containers} {
		for i := range list {
			c := &list[i]
			c.VolumeMounts = append(c.VolumeMounts, mounts...)
			c.Env = append(c.Env, env...)
		}
	}
}

func imageVolume(name, ref string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
		Image: &corev1.ImageVolumeSource{Reference: ref, PullPolicy: corev1.PullIfNotPresent}}}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// logDrain is how long a finished hook's log followers may take to print
// what its containers wrote last.
const logDrain = 5 * time.Second

// Run creates the hook's Job, streams its pods' logs to logs and waits
// for it to complete. A failed Job's error carries the reason; the logs
// were already streamed. Unless the Job names a service account of its
// own, it runs as an account made for this run, bound to ClusterRole until
// the Job ends, succeeded or failed. Cancelling ctx leaves a running Job
// and its account: a resumed run adopts the Job and revokes the account
// once it ends; RevokeAll does it for a rolled back operation.
func Run(ctx context.Context, cs *kube.Client, s Spec, logs io.Writer) error {
	f := newFollowers(ctx, cs, logs)
	defer f.stop(logDrain)
	j, err := s.JobObject()
	if err != nil {
		return err
	}
	if err := checkServiceAccount(ctx, cs, s, j); err != nil {
		return err
	}
	created, err := adopt(ctx, cs, s, j.Namespace)
	if err != nil {
		return err
	}
	if created == nil {
		if created, err = create(ctx, cs, s, j); err != nil {
			return err
		}
	}
	a, owned := accountOf(created)
	for {
		job, err := cs.Jobs(created.Namespace).Get(ctx, created.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("hook job %s: %w", created.Name, err)
		}
		f.followPods(job)
		if done, err := finished(job); done {
			if err != nil {
				// The plan keeps the error: say why there, not only in
				// the streamed output, which may be long gone.
				f.stop(logDrain)
				if tail := f.out.tail(); tail != "" {
					err = fmt.Errorf("%w; its logs ended with:\n%s", err, tail)
				}
			}
			if owned {
				err = errors.Join(err, revoke(ctx, cs, a))
			}
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// create makes the run's Job, with an account of its own unless the Job
// names one.
func create(ctx context.Context, cs *kube.Client, s Spec, j *batchv1.Job) (*batchv1.Job, error) {
	var a account
	owned := j.Spec.Template.Spec.ServiceAccountName == ""
	if owned {
		var err error
		if a, err = grant(ctx, cs, s, j.Namespace); err != nil {
			return nil, err
		}
		j.Spec.Template.Spec.ServiceAccountName = a.name
		if j.Annotations == nil {
			j.Annotations = map[string]string{}
		}
		j.Annotations[AnnotationAccount] = a.name
	}
	created, err := cs.Jobs(j.Namespace).Create(ctx, j, metav1.CreateOptions{})
	if err != nil {
		err = fmt.Errorf("creating hook job %s/%s: %w", j.Namespace, j.Name, err)
		if owned {
			err = errors.Join(err, revoke(ctx, cs, a))
		}
		return nil, err
	}
	return created, nil
}

// checkServiceAccount refuses a Job that names a service account of its
// own (to run with less than a run account's rights) which does not
// exist: its pods could never be created, and the hook would only fail
// at its deadline, minutes later.
func checkServiceAccount(ctx context.Context, cs *kube.Client, s Spec, j *batchv1.Job) error {
	name := j.Spec.Template.Spec.ServiceAccountName
	if name == "" {
		return nil
	}
	_, err := cs.ServiceAccounts(j.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("hook %s runs as service account %s, which namespace %s does not have: "+
			"create it (with its role) before this hook runs, or leave serviceAccountName out to run as an account "+
			"of the hook's own, bound to %s while it runs",
			s.Hook, name, j.Namespace, ClusterRole)
	}
	if err != nil {
		return fmt.Errorf("hook %s: service account %s: %w", s.Hook, name, err)
	}
	return nil
}

// adopt returns a Job of this operation's run of the hook that completed
// or still runs: an installer killed while a hook ran resumes by following
// that Job, not by running the hook a second time. Failed runs are not
// adopted: resuming after a fix runs the hook again.
func adopt(ctx context.Context, cs *kube.Client, s Spec, ns string) (*batchv1.Job, error) {
	sel := metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: s.labels()})
	jobs, err := cs.Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("looking for earlier runs of hook %s: %w", s.Hook, err)
	}
	for i := range jobs.Items {
		if done, err := finished(&jobs.Items[i]); !done || err == nil {
			return &jobs.Items[i], nil
		}
	}
	return nil, nil
}

// finished reads the Job's terminal condition.
func finished(job *batchv1.Job) (bool, error) {
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return true, nil
		case batchv1.JobFailed:
			return true, fmt.Errorf("hook job %s/%s failed: %s: %s", job.Namespace, job.Name, c.Reason, c.Message)
		}
	}
	return false, nil
}

// followers stream the logs of a hook's containers, each in its own
// goroutine so that watching the Job goes on while a container runs, and
// each container once (per restart).
type followers struct {
	ctx      context.Context
	cancel   context.CancelFunc
	cs       *kube.Client
	out      *lockedWriter
	streamed map[string]bool
	wg       sync.WaitGroup
}

func newFollowers(ctx context.Context, cs *kube.Client, logs io.Writer) *followers {
	ctx, cancel := context.WithCancel(ctx)
	return &followers{ctx: ctx, cancel: cancel, cs: cs, out: &lockedWriter{w: logs}, streamed: map[string]bool{}}
}

// followPods starts following every container of the Job's pods that has
// started and is not followed yet.
func (f *followers) followPods(job *batchv1.Job) {
	pods, err := f.cs.Pods(job.Namespace).List(f.ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=" + job.Name})
	if err != nil {
		return
	}
	for _, pod := range pods.Items {
		for _, st := range append(slices.Clone(pod.Status.InitContainerStatuses), pod.Status.ContainerStatuses...) {
			key := fmt.Sprintf("%s/%s/%d", pod.Name, st.Name, st.RestartCount)
			if f.streamed[key] || (st.State.Running == nil && st.State.Terminated == nil) {
				continue
			}
			f.streamed[key] = true
			f.wg.Go(func() { follow(f.ctx, f.cs, pod, st.Name, f.out) })
		}
	}
}

// stop waits up to drain for the followers to reach the end of their
// containers' logs, then ends the ones still following.
func (f *followers) stop(drain time.Duration) {
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drain):
	}
	f.cancel()
	f.wg.Wait()
}

// tailLines is how many of a failed hook's last log lines its error keeps.
const tailLines = 10

// lockedWriter lets followers write whole lines without interleaving, and
// keeps the last tailLines of them.
type lockedWriter struct {
	mu   sync.Mutex
	w    io.Writer
	last []string
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for line := range strings.Lines(string(p)) {
		l.last = append(l.last, line)
	}
	if n := len(l.last); n > tailLines {
		l.last = slices.Clone(l.last[n-tailLines:])
	}
	return l.w.Write(p)
}

func (l *lockedWriter) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.TrimRight(strings.Join(l.last, ""), "\n")
}

// follow copies a container's log to w until it ends.
func follow(ctx context.Context, cs *kube.Client, pod corev1.Pod, container string, w io.Writer) {
	rc, err := cs.PodLogs(ctx, pod.Namespace, pod.Name, container, true)
	if err != nil {
		fmt.Fprintf(w, "(logs of %s/%s: %v)\n", pod.Name, container, err)
		return
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fmt.Fprintf(w, "%s: %s\n", container, sc.Text())
	}
}
