package hook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opengravity/gravity/internal/kube"
)

// App is what an application's hooks run with: the installer's and the
// upgrade's from the app package, the cluster service's from the cluster's
// record of the running version (cluster.NodeHooks).
type App struct {
	Name, Version                                string
	Cluster, Provider, Flavor                    string
	ResourcesImage, ResourcesSubPath, ToolsImage string
}

// Spec is the run of job as hook hookName of a, for operation op, with
// Gravity's environment and env added to it.
func (a App) Spec(job *batchv1.Job, hookName, op string, env map[string]string) Spec {
	e := map[string]string{"GRAVITY_CLUSTER_NAME": a.Cluster, "GRAVITY_APP_NAME": a.Name,
		"GRAVITY_APP_VERSION": a.Version, "GRAVITY_OPERATION_ID": op,
		"GRAVITY_HOOK": hookName, "GRAVITY_SERVICE_USER": "1000",
		"GRAVITY_CLUSTER_PROVIDER": a.Provider, "GRAVITY_CLUSTER_FLAVOR": a.Flavor}
	for k, v := range env {
		e[k] = v
	}
	return Spec{Job: job, Hook: hookName, App: a.Name, Namespace: "default", Name: JobName(a.Name, hookName),
		ResourcesImage: a.ResourcesImage, ResourcesSubPath: a.ResourcesSubPath, ToolsImage: a.ToolsImage,
		OperationID: op, Env: e}
}

// Run runs job as hook hookName of a, in the namespace the Job names
// (created when missing).
func (a App) Run(ctx context.Context, cs *kube.Client, job *batchv1.Job, hookName, op string, env map[string]string, logs io.Writer) error {
	if ns := job.Namespace; ns != "" && ns != "default" && ns != "kube-system" {
		_, err := cs.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("hook namespace %s: %w", ns, err)
		}
	}
	return Run(ctx, cs, a.Spec(job, hookName, op, env), logs)
}

// JobName is unique per run, so a resumed or repeated hook never collides
// with the Job of an earlier attempt (kept for its logs).
func JobName(app, hookName string) string {
	name := fmt.Sprintf("%s-%s-%s", app, hookName, randomHex(3))
	return strings.ToLower(strings.TrimLeft(name[max(0, len(name)-63):], "-"))
}

// Tail keeps the last bytes written to it, for an error to end with what
// a hook or a phase printed last. It is safe for concurrent writers (the
// logs of a hook's pods).
type Tail struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

// NewTail keeps the last max bytes.
func NewTail(max int) *Tail { return &Tail{max: max} }

func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

// String is everything kept.
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}

// Last is the last n bytes kept, trimmed of surrounding space.
func (t *Tail) Last(n int) string {
	s := t.String()
	return strings.TrimSpace(s[max(0, len(s)-n):])
}
