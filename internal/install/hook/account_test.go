package hook

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opengravity/gravity/internal/kube"
	"github.com/opengravity/gravity/internal/kube/kubefake"
)

// TestRunAccount: a hook runs as an account made for its run, bound to
// cluster-admin while the Job runs and gone once it ends, succeeded or
// failed; a Job naming its own account gets none; a cancelled run keeps
// its account for the Job still running, until RevokeAll.
func TestRunAccount(t *testing.T) {
	for _, tc := range []struct {
		name   string
		end    batchv1.JobConditionType // "" leaves the Job running and cancels Run
		own    string                   // the Job's own service account
		wantOK bool
	}{
		{name: "succeeded", end: batchv1.JobComplete, wantOK: true},
		{name: "failed", end: batchv1.JobFailed},
		{name: "its own account", end: batchv1.JobComplete, own: "app-installer", wantOK: true},
		{name: "cancelled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := spec()
			ns := s.Job.Namespace
			s.Job.Spec.Template.Spec.ServiceAccountName = tc.own
			cs, _ := kubefake.NewClient(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app-installer", Namespace: ns}})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			seen := make(chan string, 1)
			// The Job controller's part: look at the Job Run made, then end it.
			go func() {
				j := waitJob(ctx, t, cs, ns)
				if j == nil {
					return
				}
				seen <- checkBound(ctx, t, cs, j)
				if tc.end == "" {
					cancel()
					return
				}
				j.Status.Conditions = []batchv1.JobCondition{{Type: tc.end, Status: corev1.ConditionTrue, Reason: "Done"}}
				if _, err := cs.Jobs(ns).Update(ctx, j, metav1.UpdateOptions{}); err != nil {
					t.Error(err)
				}
			}()
			err := Run(ctx, cs, s, io.Discard)
			if (err == nil) != tc.wantOK {
				t.Fatalf("Run: %v, want ok=%v", err, tc.wantOK)
			}
			name := <-seen
			switch {
			case tc.own != "":
				if name != tc.own {
					t.Errorf("the Job runs as %q, want its own %q", name, tc.own)
				}
			case !strings.HasPrefix(name, accountPrefix) || len(name) != len(accountPrefix)+16:
				t.Errorf("the Job runs as %q, want %s and 16 random hex digits", name, accountPrefix)
			}
			left := accounts(t, cs)
			if tc.end == "" {
				if len(left) != 2 {
					t.Fatalf("a cancelled run left %v, want its account and binding for the Job still running", left)
				}
				if err := RevokeAll(context.Background(), cs, s.OperationID); err != nil {
					t.Fatal(err)
				}
				left = accounts(t, cs)
			}
			if len(left) != 0 {
				t.Errorf("left after the hook: %v", left)
			}
		})
	}
}

func waitJob(ctx context.Context, t *testing.T, cs *kube.Client, ns string) *batchv1.Job {
	for ctx.Err() == nil {
		jobs, err := cs.Jobs(ns).List(ctx, metav1.ListOptions{})
		if err == nil && len(jobs.Items) > 0 {
			return &jobs.Items[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Error("no Job was created")
	return nil
}

// checkBound checks, while the Job runs, that its account (unless the Job
// named its own) exists and is bound to ClusterRole, and returns its name.
func checkBound(ctx context.Context, t *testing.T, cs *kube.Client, j *batchv1.Job) string {
	name := j.Spec.Template.Spec.ServiceAccountName
	if !strings.HasPrefix(name, accountPrefix) {
		return name
	}
	if _, err := cs.ServiceAccounts(j.Namespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
		t.Errorf("the run's account: %v", err)
	}
	crb, err := cs.ClusterRoleBindings().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Errorf("the run's binding: %v", err)
		return name
	}
	if crb.RoleRef.Name != ClusterRole || len(crb.Subjects) != 1 || crb.Subjects[0].Name != name ||
		crb.Subjects[0].Namespace != j.Namespace {
		t.Errorf("binding %+v", crb)
	}
	return name
}

// accounts lists the hook accounts and bindings there are.
func accounts(t *testing.T, cs *kube.Client) []string {
	ctx := context.Background()
	var out []string
	sas, err := cs.ServiceAccounts(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sa := range sas.Items {
		if strings.HasPrefix(sa.Name, accountPrefix) {
			out = append(out, "serviceaccount "+sa.Namespace+"/"+sa.Name)
		}
	}
	crbs, err := cs.ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, crb := range crbs.Items {
		if strings.HasPrefix(crb.Name, accountPrefix) {
			out = append(out, "clusterrolebinding "+crb.Name)
		}
	}
	return out
}

// TestRunJobCreateFailsRevokes: when the Job cannot be created, the
// account made for it goes too.
func TestRunJobCreateFailsRevokes(t *testing.T) {
	s := spec()
	s.Job.Namespace = "missing"
	cs, _ := kubefake.NewClient()
	j, err := s.JobObject()
	if err != nil {
		t.Fatal(err)
	}
	// An invalid Job: the fake refuses a second Job of the same name.
	if _, err := cs.Jobs(j.Namespace).Create(context.Background(), j.DeepCopy(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = create(context.Background(), cs, s, j)
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("create: %v", err)
	}
	if left := accounts(t, cs); len(left) != 0 {
		t.Errorf("left after a failed create: %v", left)
	}
}
