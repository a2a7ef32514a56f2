package install

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go.yaml.in/yaml/v3"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/opengravity/gravity/internal/atomicdir"
	"github.com/opengravity/gravity/internal/cluster"
	"github.com/opengravity/gravity/internal/kube"
	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/runtime/config"
	"github.com/opengravity/gravity/internal/store"
)

// step is what every installer-side phase has at hand.
type step struct {
	cfg      Config
	imageDir string // the unpacked cluster image (only /init reads it)
	out      io.Writer
}

// master is the first master: the installer runs cluster-wide steps
// through its credentials.
func (s step) master() (config.Node, error) {
	for _, n := range s.cfg.Nodes {
		if n.Master {
			return s.cfg.RuntimeNode(n)
		}
	}
	return config.Node{}, errors.New("the operation has no master node")
}

// AdminKubeconfig is the admin's kubeconfig on a master.
func AdminKubeconfig(n config.Node) string { return n.Paths().Kubeconfig(config.KubeconfigAdmin) }

func (s step) clients() (cluster.Clients, error) {
	m, err := s.master()
	if err != nil {
		return cluster.Clients{}, err
	}
	return Clients(AdminKubeconfig(m))
}

// Clients builds the clients of the cluster a kubeconfig points at.
func Clients(kubeconfig string) (cluster.Clients, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return cluster.Clients{}, fmt.Errorf("admin kubeconfig: %w", err)
	}
	rc.Timeout = 30 * time.Second
	// Pod Security warnings about hook pods are expected (baseline is
	// enforced, restricted only warned); they belong in the hook's logs,
	// not the progress output.
	rc.WarningHandler = rest.NoWarnings{}
	return cluster.NewClients(rc)
}

// initStep copies what the install needs out of the unpacked cluster
// image into the state dir: after it, deleting the unpacked directory
// breaks nothing.
type initStep struct{ step }

func (s initStep) Execute(ctx context.Context) error {
	dir := s.cfg.PackagesDir()
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err == nil {
		return nil // a finished copy: atomicdir never leaves half of one
	}
	return atomicdir.Fill(dir, 0o755, func(tmp string) error {
		st, err := store.Open(tmp)
		if err != nil {
			return err
		}
		_, err = st.Load(ctx, filepath.Join(s.imageDir, "packages"))
		return err
	})
}

func (s initStep) Rollback(context.Context) error { return os.RemoveAll(s.cfg.PackagesDir()) }

// configureStep makes the cluster's secrets: a new CA set, from which
// every node's certificates are issued at bootstrap.
type configureStep struct{ step }

func (s configureStep) Execute(context.Context) error {
	if _, err := pki.LoadCASet(s.cfg.PKIDir()); err == nil {
		return nil
	}
	if err := os.RemoveAll(s.cfg.PKIDir()); err != nil {
		return err
	}
	cs, err := pki.NewCASet(s.cfg.ClusterName, pki.DefaultCAValidity, time.Now())
	if err != nil {
		return err
	}
	return cs.Save(s.cfg.PKIDir(), false)
}

func (s configureStep) Rollback(context.Context) error { return os.RemoveAll(s.cfg.PKIDir()) }

// caFiles reads the CA set for sending to a node.
func caFiles(dir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		files[rel], err = os.ReadFile(path)
		return err
	})
	return files, err
}

// waitStep waits for the API server and every node to be Ready.
type waitStep struct{ step }

func (s waitStep) Execute(ctx context.Context) error {
	c, err := s.clients()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for _, n := range s.cfg.Nodes {
		if err := waitNodeReady(ctx, c.Kube, n.IP); err != nil {
			return err
		}
	}
	return nil
}

// Rollback: waiting changes nothing.
func (s waitStep) Rollback(context.Context) error { return nil }

func waitNodeReady(ctx context.Context, kc *kube.Client, name string) error {
	var last error
	for {
		n, err := kc.Nodes().Get(ctx, name, metav1.GetOptions{})
		if err == nil && nodeReady(n) {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s not Ready: %w (last error: %v)", name, ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// rbacStep labels the nodes, creates gravity's resource definitions and
// the cluster record, and moves the plan into the cluster. Hooks get no
// standing account here: each run gets its own (internal/install/hook).
type rbacStep struct{ step }

func (s rbacStep) Execute(ctx context.Context) error {
	c, err := s.clients()
	if err != nil {
		return err
	}
	if err := s.labelNodes(ctx, c); err != nil {
		return err
	}
	for _, cr := range []*rbacv1.ClusterRole{config.CSRApproverRole(), cluster.NodeAgentRole()} {
		if _, err := c.Kube.ClusterRoles().Create(ctx, cr, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("cluster role %s: %w", cr.Name, err)
		}
	}
	for _, crb := range []*rbacv1.ClusterRoleBinding{config.KubeletCertRotationBinding(), config.CSRApproverBinding(),
		config.ClusterServiceBinding(), cluster.NodeAgentBinding()} {
		if _, err := c.Kube.ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("cluster role binding %s: %w", crb.Name, err)
		}
	}
	if err := cluster.EnsureGroupBindings(ctx, c); err != nil {
		return err
	}
	if err := cluster.EnsureCRDs(ctx, c); err != nil {
		return err
	}
	app, err := loadApp(s.cfg)
	if err != nil {
		return err
	}
	profiles, err := yaml.Marshal(app.Manifest.NodeProfiles)
	if err != nil {
		return err
	}
	if err := cluster.SaveProfiles(ctx, c, profiles); err != nil {
		return err
	}
	if err := cluster.SaveToken(ctx, c, cluster.JoinToken{Token: s.cfg.Token, Expires: s.cfg.TokenExpires}); err != nil {
		return err
	}
	return cluster.SaveInfo(ctx, c, s.info("installing"))
}

// labelNodes records each node's profile, hostname and, on masters, the
// control-plane role: kubelets may not set node-role labels themselves.
func (s rbacStep) labelNodes(ctx context.Context, c cluster.Clients) error {
	for _, n := range s.cfg.Nodes {
		labels := map[string]string{cluster.LabelRole: n.Role, cluster.LabelHostname: n.Hostname}
		if n.Master {
			labels["node-role.kubernetes.io/control-plane"] = ""
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
		if err != nil {
			return err
		}
		if _, err := c.Kube.Nodes().Patch(ctx, n.IP, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("labelling node %s: %w", n.IP, err)
		}
	}
	return nil
}

func (s step) info(state string) cluster.Info {
	return cluster.Info{Name: s.cfg.ClusterName, State: state, App: s.cfg.AppName, AppVersion: s.cfg.AppVersion,
		Provider: s.cfg.CloudProvider, Created: s.cfg.Created}
}

func (s rbacStep) Rollback(ctx context.Context) error {
	c, err := s.clients()
	if err != nil {
		return err
	}
	return errors.Join(cluster.DeleteToken(ctx, c), cluster.DeleteCRDs(ctx, c), cluster.DeleteGroupBindings(ctx, c),
		ignoreNotFound(c.Kube.ClusterRoleBindings().Delete(ctx, config.KubeletCertRotationBinding().Name, metav1.DeleteOptions{})),
		ignoreNotFound(c.Kube.ClusterRoleBindings().Delete(ctx, config.CSRApproverBinding().Name, metav1.DeleteOptions{})),
		ignoreNotFound(c.Kube.ClusterRoleBindings().Delete(ctx, config.ClusterServiceBinding().Name, metav1.DeleteOptions{})),
		ignoreNotFound(c.Kube.ClusterRoleBindings().Delete(ctx, cluster.NodeAgentBinding().Name, metav1.DeleteOptions{})),
		ignoreNotFound(c.Kube.ClusterRoles().Delete(ctx, config.CSRApproverRole().Name, metav1.DeleteOptions{})),
		ignoreNotFound(c.Kube.ClusterRoles().Delete(ctx, cluster.NodeAgentRole().Name, metav1.DeleteOptions{})))
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// corednsStep writes the cluster DNS configuration (the Corefile, which
// answers registry.local with the masters) before the dns-app runs it.
type corednsStep struct{ step }

func (s corednsStep) Execute(ctx context.Context) error {
	c, err := s.clients()
	if err != nil {
		return err
	}
	m, err := s.master()
	if err != nil {
		return err
	}
	corefile, err := config.Corefile(m)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: config.DNSName, Namespace: "kube-system"},
		Data: map[string]string{"Corefile": string(corefile)}}
	cms := c.Kube.ConfigMaps("kube-system")
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		return err
	} else {
		return err
	}
}

func (s corednsStep) Rollback(ctx context.Context) error {
	c, err := s.clients()
	if err != nil {
		return err
	}
	return ignoreNotFound(c.Kube.ConfigMaps("kube-system").Delete(ctx, config.DNSName, metav1.DeleteOptions{}))
}
