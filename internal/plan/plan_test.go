package plan

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sample is a small install-like plan: two leaves, a group of two, a last
// leaf requiring the group.
func sample() *Plan {
	return &Plan{Version: SchemaVersion, OperationID: "op", OperationType: "install", Phases: []*Phase{
		{ID: "/init", Type: "t"},
		{ID: "/checks", Type: "t", Requires: []string{"/init"}},
		{ID: "/masters", Phases: []*Phase{
			{ID: "/masters/n1/runtime", Type: "t", Node: "n1", Requires: []string{"/checks"}},
			{ID: "/masters/n1/wait", Type: "t", Node: "n1"},
		}},
		{ID: "/app", Type: "t", Requires: []string{"/masters"}},
	}}
}

func setStates(p *Plan, states map[string]State) *Plan {
	for id, st := range states {
		ph, err := p.Find(id)
		if err != nil {
			panic(err)
		}
		ph.State = st
	}
	return p
}

func TestNext(t *testing.T) {
	for _, tc := range []struct {
		name    string
		states  map[string]State
		retry   bool
		want    string
		wantErr string
	}{
		{name: "fresh", want: "/init"},
		{name: "after init", states: map[string]State{"/init": Completed}, want: "/checks"},
		{name: "crashed in progress runs again", states: map[string]State{"/init": Completed, "/checks": InProgress}, want: "/checks"},
		{name: "failed blocks", states: map[string]State{"/init": Failed}, wantErr: "a phase failed"},
		{name: "failed retried on resume", states: map[string]State{"/init": Failed}, retry: true, want: "/init"},
		{name: "group requirement", states: map[string]State{"/init": Completed, "/checks": Completed,
			"/masters/n1/runtime": Completed, "/masters/n1/wait": Completed}, want: "/app"},
		{name: "done", states: map[string]State{"/init": Completed, "/checks": Completed,
			"/masters/n1/runtime": Completed, "/masters/n1/wait": Completed, "/app": Completed}},
		{name: "rolled back requirement blocks", states: map[string]State{"/init": RolledBack, "/checks": Completed},
			want: "/init"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := setStates(sample(), tc.states)
			ph, err := p.Next(tc.retry)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if ph != nil {
				got = ph.ID
			}
			if got != tc.want {
				t.Fatalf("next = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestGroupState(t *testing.T) {
	for _, tc := range []struct {
		a, b, want State
	}{
		{Unstarted, Unstarted, Unstarted},
		{Completed, Unstarted, InProgress},
		{Completed, Completed, Completed},
		{Completed, Failed, Failed},
		{RolledBack, RolledBack, RolledBack},
		{RolledBack, Unstarted, RolledBack}, // undone half way
		{Unstarted, Unstarted, Unstarted},
		{InProgress, Unstarted, InProgress},
	} {
		p := setStates(sample(), map[string]State{"/masters/n1/runtime": tc.a, "/masters/n1/wait": tc.b})
		g, _ := p.Find("/masters")
		if got := g.StateOf(); got != tc.want {
			t.Errorf("%s+%s = %s, want %s", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestCheckExecute(t *testing.T) {
	for _, tc := range []struct {
		name    string
		states  map[string]State
		id      string
		force   bool
		want    []string
		wantErr string
	}{
		{name: "requirement missing", id: "/checks", wantErr: "requires /init, which is unstarted"},
		{name: "requirement missing, forced", id: "/checks", force: true, want: []string{"/checks"}},
		{name: "completed", states: map[string]State{"/init": Completed}, id: "/init", wantErr: "already completed"},
		{name: "completed, forced", states: map[string]State{"/init": Completed}, id: "/init", force: true, want: []string{"/init"}},
		{name: "group runs its unfinished leaves", id: "/masters",
			states: map[string]State{"/init": Completed, "/checks": Completed, "/masters/n1/runtime": Completed},
			want:   []string{"/masters/n1/wait"}},
		{name: "unknown", id: "/nope", wantErr: `no phase "/nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := setStates(sample(), tc.states)
			todo, err := p.CheckExecute(tc.id, tc.force)
			checkIDs(t, todo, err, tc.want, tc.wantErr)
		})
	}
}

func TestRollbackOrder(t *testing.T) {
	ran := map[string]State{"/init": Completed, "/checks": Completed, "/masters/n1/runtime": Failed}
	for _, tc := range []struct {
		name    string
		id      string
		force   bool
		want    []string
		wantErr string
	}{
		{name: "failed leaf", id: "/masters/n1/runtime", want: []string{"/masters/n1/runtime"}},
		{name: "group, last first", id: "/masters", want: []string{"/masters/n1/runtime"}},
		{name: "earlier phase while a later one holds changes", id: "/checks", wantErr: "roll back /masters/n1/runtime first"},
		{name: "forced", id: "/checks", force: true, want: []string{"/checks"}},
		{name: "never started", id: "/app", wantErr: "nothing to roll back"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			todo, err := setStates(sample(), ran).RollbackOrder(tc.id, tc.force)
			checkIDs(t, todo, err, tc.want, tc.wantErr)
		})
	}
	all := setStates(sample(), ran).RollbackAll()
	checkIDs(t, all, nil, []string{"/masters/n1/runtime", "/checks", "/init"}, "")
}

func checkIDs(t *testing.T, got []*Phase, err error, want []string, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("err = %v, want %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ph := range got {
		ids = append(ids, ph.ID)
	}
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("got %v, want %v", ids, want)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version int
		phases  []*Phase
		want    string
	}{
		{name: "ok", phases: sample().Phases},
		{name: "duplicate", phases: []*Phase{{ID: "/a", Type: "t"}, {ID: "/a", Type: "t"}}, want: "used twice"},
		{name: "forward requirement", phases: []*Phase{{ID: "/a", Type: "t", Requires: []string{"/b"}}, {ID: "/b", Type: "t"}}, want: "does not come before"},
		{name: "relative id", phases: []*Phase{{ID: "a", Type: "t"}}, want: "must start with /"},
		{name: "untyped leaf", phases: []*Phase{{ID: "/a"}}, want: "has no type"},
		{name: "old schema", version: 1, phases: sample().Phases, want: "schema version 1 is not 2"},
	} {
		v := SchemaVersion
		if tc.version != 0 {
			v = tc.version
		}
		err := (&Plan{Version: v, Phases: tc.phases}).Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// recorder is an executor that records calls and fails where told.
type recorder struct {
	log   *[]string
	id    string
	fail  map[string]error
	block bool
}

func (r recorder) Execute(ctx context.Context) error {
	*r.log = append(*r.log, "run "+r.id)
	if r.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return r.fail[r.id]
}

func (r recorder) Rollback(context.Context) error {
	*r.log = append(*r.log, "undo "+r.id)
	return nil
}

func TestRunnerResumeAfterFailureAndRollback(t *testing.T) {
	ctx := context.Background()
	store := FileStore{Path: filepath.Join(t.TempDir(), "plan.json")}
	if err := store.Save(ctx, sample()); err != nil {
		t.Fatal(err)
	}
	var log []string
	fail := map[string]error{"/masters/n1/wait": errors.New("boom")}
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &Runner{Store: store, Now: func() time.Time { clock = clock.Add(time.Second); return clock },
		Executors: Registry{"t": func(ph *Phase) (Executor, error) { return recorder{log: &log, id: ph.ID, fail: fail}, nil }}}
	_, err := r.Resume(ctx)
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("resume: %v", err)
	}
	p, _ := store.Load(ctx)
	if ph, _ := p.Find("/masters/n1/wait"); ph.State != Failed || ph.Error != "boom" {
		t.Fatalf("persisted %+v", ph)
	}
	delete(fail, "/masters/n1/wait") // the fix
	if p, err = r.Resume(ctx); err != nil || !p.Done() {
		t.Fatalf("resume after fix: %v (done %v)", err, p.Done())
	}
	if _, err := r.Rollback(ctx, "", false); err != nil {
		t.Fatal(err)
	}
	want := "run /init,run /checks,run /masters/n1/runtime,run /masters/n1/wait,run /masters/n1/wait,run /app," +
		"undo /app,undo /masters/n1/wait,undo /masters/n1/runtime,undo /checks,undo /init"
	if got := strings.Join(log, ","); got != want {
		t.Fatalf("calls:\n got %s\nwant %s", got, want)
	}
	p, _ = store.Load(ctx)
	if p.State() != RolledBack {
		t.Fatalf("plan state %s", p.State())
	}
}

// An interrupted phase stays in progress on disk, as after kill -9, and is
// the next to run.
func TestRunnerInterrupted(t *testing.T) {
	store := FileStore{Path: filepath.Join(t.TempDir(), "plan.json")}
	if err := store.Save(context.Background(), sample()); err != nil {
		t.Fatal(err)
	}
	var log []string
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{Store: store, Executors: Registry{"t": func(ph *Phase) (Executor, error) {
		return recorder{log: &log, id: ph.ID, block: ph.ID == "/checks"}, nil
	}}, Progress: func(e Event) {
		if e.Phase.ID == "/checks" && e.State == InProgress {
			cancel()
		}
	}}
	if _, err := r.Resume(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	p, _ := store.Load(context.Background())
	next, err := p.Next(false)
	if err != nil || next.ID != "/checks" || next.State != InProgress {
		t.Fatalf("next = %+v, %v", next, err)
	}
}

func TestFileStoreRefusesBadPlan(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plan.json")
	if err := WriteFileAtomic(path, []byte(`{"version":2,"phases":[{"id":"/a","type":"t"},{"id":"/a","type":"t"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (FileStore{Path: path}).Load(context.Background()); err == nil || !strings.Contains(err.Error(), "used twice") {
		t.Fatalf("err = %v", err)
	}
	if _, err := (FileStore{Path: path + ".none"}).Load(context.Background()); !errors.Is(err, ErrNoPlan) {
		t.Fatalf("err = %v", err)
	}
}

// A phase of a type nobody registered stops the operation before its first
// phase runs, not half way.
func TestRunnerRefusesUnknownType(t *testing.T) {
	ctx := context.Background()
	store := FileStore{Path: filepath.Join(t.TempDir(), "plan.json")}
	p := sample()
	p.Phases[3].Type = "mystery"
	if err := store.Save(ctx, p); err != nil {
		t.Fatal(err)
	}
	var log []string
	r := &Runner{Store: store, Executors: Registry{"t": func(ph *Phase) (Executor, error) { return recorder{log: &log, id: ph.ID}, nil }}}
	if _, err := r.Resume(ctx); err == nil || !strings.Contains(err.Error(), `phase /app: no executor for phase type "mystery" (known: [t])`) {
		t.Fatalf("err = %v", err)
	}
	if len(log) != 0 {
		t.Fatalf("ran %v", log)
	}
}

func TestRegistryRegisterTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	r := Registry{}
	r.Register("t", nil)
	r.Register("t", nil)
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"version":2,"phases":[{"id":"/a","phases":[{"id":"/a/b","type":"t","requires":["/a"]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Decode(data, "fuzz")
		if err != nil {
			return
		}
		_ = p.State()
		_, _ = p.Next(true)
		_ = p.RollbackAll()
	})
}
