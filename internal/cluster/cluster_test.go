package cluster

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/opengravity/gravity/internal/kube"
	"github.com/opengravity/gravity/internal/plan"
)

// fakeClients is a cluster on client-go's fake dynamic client, with
// gravity's resources listable and objs in it.
func fakeClients(t *testing.T, objs ...runtime.Object) Clients {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	dc := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{
		OperationsResource: "OperationList", ClustersResource: "ClusterList"}, objs...)
	k, err := kube.NewForDynamic(dc, nil)
	if err != nil {
		t.Fatal(err)
	}
	return Clients{Kube: k, Dynamic: dc}
}

func TestToken(t *testing.T) {
	ctx := context.Background()
	c := fakeClients(t)
	if _, err := Token(ctx, c); err == nil {
		t.Fatal("token read before any was saved")
	}
	for _, want := range []string{"first", "second"} { // the second replaces
		if err := SaveToken(ctx, c, JoinToken{Token: want}); err != nil {
			t.Fatal(err)
		}
		// The fake keeps StringData as it was sent, where the API server
		// moves it to Data (which Token reads, see TestReadStatus).
		s, err := c.Kube.Secrets(Namespace).Get(ctx, tokenName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s.StringData["token"] != want {
			t.Fatalf("saved token %q, want %q", s.StringData["token"], want)
		}
	}
	for range 2 { // deleting what is gone is not an error
		if err := DeleteToken(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTokenExpires: the expiry is stored beside the token and read back;
// Expired follows it.
func TestTokenExpires(t *testing.T) {
	ctx := context.Background()
	c := fakeClients(t)
	exp := time.Date(2026, 12, 8, 12, 0, 0, 0, time.UTC)
	if err := SaveToken(ctx, c, JoinToken{Token: "tok", Expires: exp}); err != nil {
		t.Fatal(err)
	}
	// The fake keeps StringData; the API server would move it to Data.
	s, err := c.Kube.Secrets(Namespace).Get(ctx, tokenName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Data = map[string][]byte{"token": []byte(s.StringData["token"]), "expires": []byte(s.StringData["expires"])}
	if _, err := c.Kube.Secrets(Namespace).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := Token(ctx, c)
	if err != nil || got.Token != "tok" || !got.Expires.Equal(exp) {
		t.Fatalf("Token = %+v, %v", got, err)
	}
	if got.Expired(exp.Add(-time.Second)) || !got.Expired(exp) || (JoinToken{Token: "x"}).Expired(exp) {
		t.Error("Expired is wrong")
	}
	s.Data["expires"] = []byte("tomorrow")
	if _, err := c.Kube.Secrets(Namespace).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Token(ctx, c); err == nil {
		t.Error("a bad expiry was read")
	}
}

func TestOperationsNewestFirst(t *testing.T) {
	ctx := context.Background()
	c := fakeClients(t)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	older := &plan.Plan{Version: plan.SchemaVersion, OperationID: "a", OperationType: "install", Created: t0,
		Phases: []*plan.Phase{{ID: "/init", Type: "init", State: plan.Completed, Finished: t0.Add(time.Minute)}}}
	newer := &plan.Plan{Version: plan.SchemaVersion, OperationID: "b", OperationType: "upgrade", Created: t0.Add(time.Hour),
		Phases: []*plan.Phase{{ID: "/init", Type: "init", State: plan.Failed}}}
	for _, p := range []*plan.Plan{older, newer, older} { // saving again replaces
		if err := SaveOperation(ctx, c, p); err != nil {
			t.Fatal(err)
		}
	}
	ops, err := Operations(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 2 || ops[0].OperationID != "b" || ops[1].OperationID != "a" {
		t.Fatalf("operations %+v, want b then a", ops)
	}
	if !reflect.DeepEqual(ops[1], older) {
		t.Errorf("round trip changed the plan:\n got %+v\nwant %+v", ops[1], older)
	}
}

func TestNodeStatus(t *testing.T) {
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue}
	tests := []struct {
		name         string
		labels       map[string]string
		conditions   []corev1.NodeCondition
		wantRoles    []string
		wantMaster   bool
		wantStatus   string
		wantProblems int
	}{
		{name: "healthy master", labels: map[string]string{LabelRole: "node", "node-role.kubernetes.io/control-plane": ""},
			conditions: []corev1.NodeCondition{ready, {Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse}},
			wantRoles:  []string{"control-plane", "node"}, wantMaster: true, wantStatus: "healthy"},
		{name: "not ready", conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Message: "kubelet stopped"}},
			wantStatus: "degraded", wantProblems: 1},
		{name: "under pressure", conditions: []corev1.NodeCondition{ready, {Type: corev1.NodeDiskPressure, Status: corev1.ConditionTrue}},
			wantStatus: "degraded", wantProblems: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "10.0.0.1", Labels: tt.labels},
				Status: corev1.NodeStatus{Conditions: tt.conditions,
					Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}}}}
			got := nodeStatus(n)
			if got.Status != tt.wantStatus || len(got.Problems) != tt.wantProblems || got.Address != "10.0.0.1" || got.Master != tt.wantMaster || got.Profile != tt.labels[LabelRole] ||
				!reflect.DeepEqual(got.Roles, tt.wantRoles) {
				t.Errorf("nodeStatus = %+v", got)
			}
		})
	}
}

// TestReadStatus: the status gathers the record, token, nodes and
// operations, and lists only the endpoints that answer.
func TestReadStatus(t *testing.T) {
	ctx := context.Background()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "10.0.0.1", Labels: map[string]string{LabelHostname: "node-1"}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	token := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: tokenName, Namespace: Namespace},
		Data: map[string][]byte{"token": []byte("s3cret")}}
	c := fakeClients(t, node, token)
	info := Info{Name: "calmlagoon1", State: "active", App: "cluster-image", AppVersion: "0.0.1"}
	if err := SaveInfo(ctx, c, info); err != nil {
		t.Fatal(err)
	}
	if err := SaveOperation(ctx, c, &plan.Plan{Version: plan.SchemaVersion, OperationID: "op1", OperationType: "install",
		Phases: []*plan.Phase{{ID: "/init", Type: "init", State: plan.Completed}}}); err != nil {
		t.Fatal(err)
	}
	var asked []string
	probes := Probes{
		API: func(_ context.Context, url string) error { asked = append(asked, url); return nil },
		Registry: func(_ context.Context, url string) error {
			asked = append(asked, url)
			return errors.New("connection refused")
		},
	}
	st, err := ReadStatus(ctx, c, probes)
	if err != nil {
		t.Fatal(err)
	}
	if st.Info.Name != info.Name || st.Info.AppVersion != "0.0.1" || st.Token != "s3cret" {
		t.Errorf("status %+v", st)
	}
	if len(st.Nodes) != 1 || st.Nodes[0].Hostname != "node-1" || st.Nodes[0].Status != "healthy" {
		t.Errorf("nodes %+v", st.Nodes)
	}
	if len(st.Operations) != 1 || st.Operations[0].State != string(plan.Completed) {
		t.Errorf("operations %+v", st.Operations)
	}
	want := []Endpoint{{Name: "Kubernetes API", URLs: []string{"https://10.0.0.1:6443"}}}
	if !reflect.DeepEqual(st.Endpoints, want) || len(asked) != 2 {
		t.Errorf("endpoints %+v (asked %v), want only the API, which answered", st.Endpoints, asked)
	}
}

// TestMasterIPs: the masters are the control-plane nodes the cluster has
// now, sorted, whatever a node's config says.
func TestMasterIPs(t *testing.T) {
	node := func(name string, master bool) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
		if master {
			n.Labels["node-role.kubernetes.io/control-plane"] = ""
		}
		return n
	}
	c := fakeClients(t, node("10.0.0.3", true), node("10.0.0.1", true), node("10.0.0.2", false), node("10.0.0.10", true))
	got, err := MasterIPs(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[10.0.0.1 10.0.0.10 10.0.0.3]" {
		t.Errorf("masters %v", got)
	}
}
