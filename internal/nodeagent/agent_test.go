package nodeagent

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opengravity/gravity/internal/pki"
	"github.com/opengravity/gravity/internal/plan"
)

// recorder is an executor that notes what it ran and with which payload.
type recorder struct {
	ran     *[]string
	id      string
	payload string
	fail    bool
}

func (r recorder) Execute(context.Context) error {
	data, _ := os.ReadFile(r.payload)
	*r.ran = append(*r.ran, "execute "+r.id+" "+string(data))
	if r.fail {
		return errors.New("boom")
	}
	return nil
}

func (r recorder) Rollback(context.Context) error {
	*r.ran = append(*r.ran, "rollback "+r.id)
	return nil
}

func issue(t *testing.T, cs *pki.CASet, n pki.Node) map[string]*pki.KeyPair {
	t.Helper()
	kps, err := pki.NodeCerts(cs, n)
	if err != nil {
		t.Fatal(err)
	}
	return kps
}

// TestAgent: over real mutual TLS, only a master's agent-client identity
// runs phases, and only the started phases of this node that the cluster's
// record has, of a type the agent knows.
func TestAgent(t *testing.T) {
	now := time.Now()
	cs, err := pki.NewCASet("c", pki.DefaultCAValidity, now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCASet("other", pki.DefaultCAValidity, now)
	if err != nil {
		t.Fatal(err)
	}
	masterNode := pki.Node{Name: "10.0.0.1", IP: net.ParseIP("10.0.0.1"), Master: true, ServiceIP: net.ParseIP("10.96.0.1")}
	master := issue(t, cs, masterNode)
	stranger := issue(t, other, masterNode)
	self := issue(t, cs, pki.Node{Name: "10.0.0.3", IP: net.IPv4(127, 0, 0, 1)})

	leaf := func(id, typ, node string, st plan.State) *plan.Phase {
		return &plan.Phase{ID: id, Type: typ, Node: node, State: st}
	}
	ops := map[string]*plan.Plan{"op": {OperationID: "op", Phases: []*plan.Phase{
		leaf("/mine", "t", "10.0.0.3", plan.InProgress),
		leaf("/fails", "t", "10.0.0.3", plan.InProgress),
		leaf("/done", "t", "10.0.0.3", plan.Completed),
		leaf("/later", "t", "10.0.0.3", plan.Unstarted),
		leaf("/theirs", "t", "10.0.0.4", plan.InProgress),
		leaf("/unknown", "other", "10.0.0.3", plan.InProgress),
		{ID: "/group", Phases: []*plan.Phase{leaf("/group/a", "t", "10.0.0.3", plan.InProgress)}},
	}}}
	var ran []string
	work := t.TempDir()
	a, err := New(Config{Node: "10.0.0.3", WorkDir: work,
		Operation: func(_ context.Context, id string) (*plan.Plan, error) {
			if p, ok := ops[id]; ok {
				return p, nil
			}
			return nil, plan.ErrNoPlan
		},
		Executors: Registry{"t": func(p *plan.Plan, ph *plan.Phase, payload string) (plan.Executor, error) {
			return recorder{ran: &ran, id: p.OperationID + ph.ID, payload: payload, fail: ph.ID == "/fails"}, nil
		}},
		Status: func() (Status, error) { return Status{Version: "9.9.9", Runtime: "running", BinDir: "/v/bin"}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(a.Handler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{self[pki.Agent].TLSCertificate()}, ClientCAs: cs.Cluster.Pool(),
		ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	client := func(kp *pki.KeyPair) *Client {
		c := NewClient(&tls.Config{Certificates: []tls.Certificate{kp.TLSCertificate()}, RootCAs: cs.Cluster.Pool()})
		c.Port, _ = strconv.Atoi(port)
		return c
	}
	ctx := context.Background()
	tests := []struct {
		name     string
		as       *pki.KeyPair
		op, ph   string
		rollback bool
		payload  string
		err      string // "" for success
		ran      string
	}{
		{"runs its phase with the payload", master[pki.AgentClient], "op", "/mine", false, "new-binary", "", "execute op/mine new-binary"},
		{"rolls back a done phase", master[pki.AgentClient], "op", "/done", true, "", "", "rollback op/done"},
		{"reports the executor's failure", master[pki.AgentClient], "op", "/fails", false, "", "boom", "execute op/fails "},
		{"a node's own certificate may not", self[pki.KubeletClient], "op", "/mine", false, "", "may not run phases on nodes (403", ""},
		{"nor the admin's", master[pki.Admin], "op", "/mine", false, "", "may not run phases on nodes", ""},
		{"nor another cluster's agent client", stranger[pki.AgentClient], "op", "/mine", false, "", "certificate", ""},
		{"another node's phase", master[pki.AgentClient], "op", "/theirs", false, "", `runs on node "10.0.0.4", not on this one`, ""},
		{"a phase not started", master[pki.AgentClient], "op", "/later", false, "", "is unstarted; the driver marks it in progress", ""},
		{"a rollback of a phase not started", master[pki.AgentClient], "op", "/later", true, "", "nothing to roll back", ""},
		{"a completed phase again", master[pki.AgentClient], "op", "/done", false, "", "is completed", ""},
		{"a phase of a type it does not run", master[pki.AgentClient], "op", "/unknown", false, "", `type "other", which this node's agent does not run`, ""},
		{"a group", master[pki.AgentClient], "op", "/group", false, "", "is a group", ""},
		{"an operation the cluster lacks", master[pki.AgentClient], "nope", "/mine", false, "", "the cluster has no operation nope (404", ""},
		{"a phase the operation lacks", master[pki.AgentClient], "op", "/nope", false, "", `no phase "/nope"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran = nil
			var body *strings.Reader
			if tt.payload != "" {
				body = strings.NewReader(tt.payload)
			}
			var err error
			if body != nil {
				err = client(tt.as).Run(ctx, "127.0.0.1", tt.op, tt.ph, tt.rollback, body)
			} else {
				err = client(tt.as).Run(ctx, "127.0.0.1", tt.op, tt.ph, tt.rollback, nil)
			}
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
			var want []string
			if tt.ran != "" {
				want = []string{tt.ran}
			}
			if !slices.Equal(ran, want) {
				t.Errorf("ran %q, want %q", ran, want)
			}
		})
	}
	if err := client(master[pki.AgentClient]).Healthy(ctx, "127.0.0.1"); err != nil {
		t.Errorf("healthz: %v", err)
	}
	if err := client(stranger[pki.AgentClient]).Healthy(ctx, "127.0.0.1"); err == nil {
		t.Error("healthz answered another cluster's certificate")
	}
	// The node's runtime is reported to a master's agent client only.
	if st, err := client(master[pki.AgentClient]).Status(ctx, "127.0.0.1"); err != nil || st != (Status{Version: "9.9.9", Runtime: "running", BinDir: "/v/bin"}) {
		t.Errorf("status: %+v, %v", st, err)
	}
	if _, err := client(self[pki.KubeletClient]).Status(ctx, "127.0.0.1"); err == nil || !strings.Contains(err.Error(), "may not") {
		t.Errorf("status to a node's own certificate: %v", err)
	}
	// A refusal is an answer, not a broken connection.
	var answer *AnswerError
	if err := client(master[pki.AgentClient]).Run(ctx, "127.0.0.1", "op", "/later", false, nil); !errors.As(err, &answer) {
		t.Errorf("a refusal is not an AnswerError: %v", err)
	}
	// Payloads do not outlive their phase.
	if left, _ := os.ReadDir(work); len(left) != 0 {
		t.Errorf("payloads left: %v", left)
	}
}
