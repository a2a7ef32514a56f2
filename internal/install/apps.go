package install

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opengravity/gravity/internal/baseimage"
	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/install/hook"
	"github.com/opengravity/gravity/internal/manifest"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/store"
)

// healthStep checks what the apps need: every node Ready and every
// master's registry answering over mTLS.
type healthStep struct{ step }

func (s healthStep) Execute(ctx context.Context) error {
	c, err := s.clients()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for _, n := range s.cfg.Nodes {
		if err := waitNodeReady(ctx, c.Kube, n.IP); err != nil {
			return err
		}
		if !n.Master {
			continue
		}
		rn, err := s.cfg.RuntimeNode(n)
		if err != nil {
			return err
		}
		if err := registryHealthy(ctx, rn); err != nil {
			return err
		}
	}
	return nil
}

// Rollback: checking changes nothing.
func (s healthStep) Rollback(context.Context) error { return nil }

func registryHealthy(ctx context.Context, n config.Node) error {
	reg, err := newRegistryClient(n, pki.RegistryClient)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+reg.host+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: reg.tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("registry on %s: %w", n.IP, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("registry on %s: %s", n.IP, resp.Status)
	}
	return nil
}

// appStep runs an application's install hook: the user's app, or a system
// app from the base image (dns-app).
type appStep struct {
	step
	app string
}

func (s appStep) Execute(ctx context.Context) error {
	if s.app == dnsApp {
		return s.dnsApp(ctx)
	}
	if err := s.userApp(ctx, "install"); err != nil {
		return err
	}
	return SaveNodeHooks(ctx, s.cfg, s.out)
}

// Rollback runs the app's uninstall hook when it has one. Without one
// nothing can remove what the app made: the runtime's rollback, which
// removes the cluster's data, does.
func (s appStep) Rollback(ctx context.Context) error {
	// A hook interrupted mid-run keeps its account until it ends; rolled
	// back instead of resumed, it never will.
	c, err := s.clients()
	if err != nil {
		return err
	}
	if err := hook.RevokeAll(ctx, c.Kube, s.cfg.OperationID); err != nil {
		return err
	}
	if s.app == dnsApp {
		return s.runDNSHook(ctx, "uninstall", []string{"kubectl", "delete", "--ignore-not-found", "-f", hook.ResourcesDir + "/coredns.yaml"})
	}
	app, err := loadApp(s.cfg)
	if err != nil {
		return err
	}
	if _, ok := app.Hook("uninstall"); !ok {
		fmt.Fprintf(s.out, "%s has no uninstall hook: its resources go with the cluster\n", s.cfg.AppName)
		return nil
	}
	return s.userApp(ctx, "uninstall")
}

// appDir is where an app package is unpacked: its resources/ holds
// app.yaml and the hooks with image names rewritten for the cluster. One
// directory per version: an upgrade holds two.
func (c Config) appDir() string { return filepath.Join(c.localDir(), "app", c.AppVersion) }

func loadApp(c Config) (*manifest.App, error) {
	dir := c.appDir()
	if _, err := os.Stat(dir); err != nil {
		st, err := store.Open(c.PackagesDir())
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return nil, err
		}
		if err := st.ExtractPackage(context.Background(), c.AppPackage, dir); err != nil {
			return nil, err
		}
	}
	return manifest.Load(filepath.Join(dir, resourcesSubPath, manifest.DefaultFile))
}

func (s appStep) userApp(ctx context.Context, hookName string) error {
	ran, err := RunAppHook(ctx, s.cfg, hookName, s.out)
	if err == nil && !ran {
		fmt.Fprintf(s.out, "%s has no %s hook\n", s.cfg.AppName, hookName)
	}
	return err
}

// HasAppHook tells whether the app of cfg (AppPackage in its package
// store) has hook hookName.
func HasAppHook(cfg Config, hookName string) (bool, error) {
	app, err := loadApp(cfg)
	if err != nil {
		return false, err
	}
	_, ok := app.Hook(hookName)
	return ok, nil
}

// RunAppHook runs hook hookName of the app of cfg as a Job, its resources
// pushed to every master's registry first; false when the app has no
// such hook. An upgrade runs the new version's hooks through it.
func RunAppHook(ctx context.Context, cfg Config, hookName string, out io.Writer) (bool, error) {
	s := appStep{step: step{cfg: cfg, out: out}, app: cfg.AppName}
	app, err := loadApp(s.cfg)
	if err != nil {
		return false, err
	}
	h, ok := app.Hook(hookName)
	if !ok {
		return false, nil
	}
	return true, s.pushAndRun(ctx, h.Job, hookName)
}

// SaveNodeHooks records in the cluster the node hooks of the app of cfg
// (cluster.NodeHooks), its resources pushed to every master's registry
// when it has any: the cluster service runs them from any master. The
// install's app phase and a finished upgrade call it.
func SaveNodeHooks(ctx context.Context, cfg Config, out io.Writer) error {
	s := appStep{step: step{cfg: cfg, out: out}, app: cfg.AppName}
	app, err := loadApp(cfg)
	if err != nil {
		return err
	}
	jobs := map[string]*batchv1.Job{}
	for _, name := range cluster.NodeHookNames {
		if h, ok := app.Hook(name); ok {
			jobs[name] = h.Job
		}
	}
	ref := resourcesRef(cfg.AppName, cfg.AppVersion)
	if len(jobs) > 0 {
		if err := s.pushResources(ctx, ref); err != nil {
			return err
		}
	}
	a, err := s.hookApp(cfg.AppName, ref)
	if err != nil {
		return err
	}
	c, err := s.clients()
	if err != nil {
		return err
	}
	return cluster.SaveNodeHooks(ctx, c, cluster.NodeHooks{App: a, Jobs: jobs})
}

// RunToolsJob runs command in the hook tools image as a hook Job of the
// operation (with its rights), e.g. `helm rollback` where an app has no
// rollback hook of its own.
func RunToolsJob(ctx context.Context, cfg Config, hookName string, command []string, out io.Writer) error {
	s := appStep{step: step{cfg: cfg, out: out}, app: cfg.AppName}
	tools, err := s.systemImage(baseimage.ImageHookTools)
	if err != nil {
		return err
	}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "default"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: hookName, Image: tools,
				Command: append([]string{"/bin/sh", "-c", `exec "$@"`, "sh"}, command...)}}}}}}
	return s.pushAndRun(ctx, job, hookName)
}

// pushAndRun pushes the app's resources image and runs job as its hook.
func (s appStep) pushAndRun(ctx context.Context, job *batchv1.Job, hookName string) error {
	ref := resourcesRef(s.cfg.AppName, s.cfg.AppVersion)
	if err := s.pushResources(ctx, ref); err != nil {
		return err
	}
	return s.runHook(ctx, job, hookName, s.cfg.AppName, ref)
}

// pushResources pushes the app package's resources image to every
// master's registry as ref.
func (s appStep) pushResources(ctx context.Context, ref string) error {
	st, err := store.Open(s.cfg.PackagesDir())
	if err != nil {
		return err
	}
	img, err := packageImage(st, s.cfg.AppPackage)
	if err != nil {
		return err
	}
	return s.pushToMasters(ctx, ref, img)
}

// resourcesRef names an app's resources image in the cluster registry.
func resourcesRef(app, version string) string {
	return config.RegistryAddr + "/gravitational/" + app + "-resources:" + version
}

func (s step) pushToMasters(ctx context.Context, ref string, img v1.Image) error {
	for _, n := range s.cfg.Nodes {
		if !n.Master {
			continue
		}
		rn, err := s.cfg.RuntimeNode(n)
		if err != nil {
			return err
		}
		reg, err := newRegistryClient(rn, pki.RegistryPusher)
		if err != nil {
			return err
		}
		if err := reg.push(ctx, ref, img); err != nil {
			return err
		}
	}
	return nil
}

func (s appStep) runHook(ctx context.Context, job *batchv1.Job, hookName, app, resources string) error {
	c, err := s.clients()
	if err != nil {
		return err
	}
	a, err := s.hookApp(app, resources)
	if err != nil {
		return err
	}
	return a.Run(ctx, c.Kube, job, hookName, s.cfg.OperationID, nil, s.out)
}

// hookApp is what app's hooks run with, its resources in the image
// resources.
func (s step) hookApp(app, resources string) (hook.App, error) {
	tools, err := s.systemImage(baseimage.ImageHookTools)
	if err != nil {
		return hook.App{}, err
	}
	return hook.App{Name: app, Version: s.cfg.AppVersion, Cluster: s.cfg.ClusterName, Provider: s.cfg.CloudProvider,
		Flavor: s.cfg.Flavor, ResourcesImage: resources, ResourcesSubPath: resourcesSubPath, ToolsImage: tools}, nil
}

// dnsApp installs CoreDNS from the base image's image with its own
// install hook: kubectl apply of its manifests, from the hook-tools image.
// Server-side apply takes over the ConfigMap /coredns created, where a
// client-side apply would warn that it lacks its last-applied annotation.
func (s appStep) dnsApp(ctx context.Context) error {
	return s.runDNSHook(ctx, "install", []string{"kubectl", "apply", "--server-side", "--force-conflicts", "-f", hook.ResourcesDir + "/coredns.yaml"})
}

func (s appStep) runDNSHook(ctx context.Context, hookName string, command []string) error {
	m, err := s.master()
	if err != nil {
		return err
	}
	image, err := s.systemImage(baseimage.ImageCoreDNS)
	if err != nil {
		return err
	}
	manifests, err := config.CoreDNSManifests(m, image, 1)
	if err != nil {
		return err
	}
	img, err := filesImage(map[string][]byte{"coredns.yaml": manifests})
	if err != nil {
		return err
	}
	ref := resourcesRef(dnsApp, s.cfg.BaseVersion)
	if err := s.pushToMasters(ctx, ref, img); err != nil {
		return err
	}
	tools, err := s.systemImage(baseimage.ImageHookTools)
	if err != nil {
		return err
	}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: cluster.Namespace},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyOnFailure,
			Containers: []corev1.Container{{Name: hookName, Image: tools,
				Command: append([]string{"/bin/sh", "-c", `exec "$@"`, "sh"}, command...)}}}}}}
	if err := s.runHook(ctx, job, hookName, dnsApp, ref); err != nil {
		return err
	}
	if hookName == "install" {
		return s.waitDeployment(ctx, "kube-system", config.DNSName)
	}
	return nil
}

func (s step) waitDeployment(ctx context.Context, ns, name string) error {
	c, err := s.clients()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for {
		d, err := c.Kube.Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && d.Status.ObservedGeneration >= d.Generation && d.Status.AvailableReplicas >= 1 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deployment %s/%s not available: %w", ns, name, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// systemImage finds a base image's system image (repo without tag) among
// the cluster image's images, pinned by digest: only the cluster pushes to
// its registry, and a tag could still be moved there; a digest cannot.
func (s step) systemImage(repo string) (string, error) {
	st, err := store.Open(s.cfg.PackagesDir())
	if err != nil {
		return "", err
	}
	entries, err := st.Entries()
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Ref, repo+":") {
			return e.Ref + "@" + e.Digest.String(), nil
		}
	}
	return "", fmt.Errorf("the cluster image has no %s image", repo)
}
