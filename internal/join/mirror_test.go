package join

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opengravity/gravity/internal/clusterservice"
	"github.com/opengravity/gravity/internal/jointoken"
	"github.com/opengravity/gravity/internal/plan"
)

// TestMirror: a save returns once the plan is on this node, without
// waiting for the cluster; the cluster gets the newest state, in order,
// and Flush returns only once it has it.
func TestMirror(t *testing.T) {
	const token = "mirror-test-token"
	release := make(chan struct{})
	var mu sync.Mutex
	var got []string // the in-progress phase of each plan the cluster got
	srv := httptest.NewUnstartedServer(nil)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == clusterservice.PathDiscovery:
			ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
			d, err := jointoken.Sign(token, ca)
			if err != nil {
				t.Error(err)
			}
			_ = json.NewEncoder(w).Encode(d)
		case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, clusterservice.PathOperation):
			<-release
			var u clusterservice.PlanUpdate
			if err := json.NewDecoder(r.Body).Decode(&u); err != nil {
				t.Error(err)
			}
			mu.Lock()
			got = append(got, current(u.Plan))
			mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		default:
			http.NotFound(w, r)
		}
	})
	srv.StartTLS()
	defer srv.Close()
	ctx := context.Background()
	c, err := clusterservice.Discover(ctx, strings.TrimPrefix(srv.URL, "https://"), token)
	if err != nil {
		t.Fatal(err)
	}
	local := plan.FileStore{Path: filepath.Join(t.TempDir(), "plan.json")}
	m := newMirror(local, c, nil)
	p := &plan.Plan{Version: plan.SchemaVersion, OperationID: "op", OperationType: clusterservice.OperationExpand}
	for _, id := range []string{"/a", "/b", "/c", "/d"} {
		p.Phases = append(p.Phases, &plan.Phase{ID: id, Type: "test", State: plan.Unstarted})
	}
	now := time.Now()
	for _, ph := range p.Phases {
		ph.Start(now)
		if err := m.Save(ctx, p); err != nil {
			t.Fatal(err)
		}
		if on, err := local.Load(ctx); err != nil || current(on) != ph.ID {
			t.Fatalf("the plan on this node after saving %s: %v, %v", ph.ID, current(on), err)
		}
		ph.Complete(now)
	}
	mu.Lock()
	early := len(got)
	mu.Unlock()
	if early != 0 {
		t.Fatalf("the cluster had %d saves while it did not answer: saves waited for it", early)
	}
	close(release)
	m.Flush()
	mu.Lock()
	defer mu.Unlock()
	// The first send was under way; the three states after it were
	// replaced by the newest.
	if strings.Join(got, ",") != "/a,/d" {
		t.Fatalf("the cluster got %v, want [/a /d]", got)
	}
}

func current(p *plan.Plan) string {
	if p == nil {
		return ""
	}
	for _, ph := range p.Leaves() {
		if ph.State == plan.InProgress {
			return ph.ID
		}
	}
	return ""
}
