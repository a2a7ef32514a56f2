package supervisor

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const statSeed = "4242 (kube-apiserver) S 1 4242 4242 0 -1 4194560 1 0 0 0 3 4 0 0 20 0 9 0 123456 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"

func TestParseStat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     procStat
		wantErr  bool
	}{
		{"plain", statSeed, procStat{State: 'S', PGID: 4242, SID: 4242, Start: 123456}, false},
		{"spaces and parens in comm",
			"7 (a) b) c) Z 1 9 8 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0\n", procStat{State: 'Z', PGID: 9, SID: 8, Start: 55}, false},
		{"no comm", "7 a S 1 2 3", procStat{}, true},
		{"short", "7 (a) S 1 2 3 4", procStat{}, true},
		{"bad pgrp", strings.Replace(statSeed, "S 1 4242", "S 1 x", 1), procStat{}, true},
		{"bad start", strings.Replace(statSeed, " 123456 ", " -1 ", 1), procStat{}, true},
		{"long state", strings.Replace(statSeed, ") S ", ") SS ", 1), procStat{}, true},
	} {
		got, err := parseStat([]byte(tc.in))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v, err=%v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
	own, err := readStat(os.Getpid())
	if err != nil || own.State == 'Z' || own.Start == 0 {
		t.Errorf("own stat %+v, %v", own, err)
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte(statSeed))
	f.Add([]byte("1 ((x)) R 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9"))
	f.Add([]byte(")"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := parseStat(data)
		if err == nil && st.State == 0 {
			t.Errorf("parsed %q without a state", data)
		}
	})
}

const netTCPSeed = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1926 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 194 1 0 100 0 0 10 0
   1: 0100007F:1926 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0 20 4 30 10 -1
   2: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 195 1 0 100 0 0 10 0
   3: 00000000000000000000000000000000:1926 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 196 1
   4: 0100007F:1926 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 0 1
`

func TestListeningInodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		port int
		want []uint64
	}{
		{6438, []uint64{194, 196}}, // 0x1926; 777 is an established connection, inode 0 a socket in TIME_WAIT-like limbo
		{80, []uint64{195}},
		{81, nil},
	} {
		if got := listeningInodes([]byte(netTCPSeed), tc.port); !slices.Equal(got, tc.want) {
			t.Errorf("port %d: %v, want %v", tc.port, got, tc.want)
		}
	}
}

func FuzzListeningInodes(f *testing.F) {
	f.Add([]byte(netTCPSeed), 6438)
	f.Add([]byte("0: 0:1 0:0 0A a b c d e 1"), 1)
	f.Fuzz(func(t *testing.T, data []byte, port int) {
		for _, ino := range listeningInodes(data, port) {
			if ino == 0 {
				t.Errorf("inode 0 returned for %q", data)
			}
		}
	})
}

func TestPortOwnerFindsThisProcess(t *testing.T) {
	t.Parallel()
	ln, port := listen(t)
	defer ln.Close()
	if got := portOwner(port); got != os.Getpid() {
		t.Errorf("owner of %d: pid %d, want %d", port, got, os.Getpid())
	}
	if err := checkPorts("x", []int{freePort(t)}); err != nil {
		t.Errorf("free port: %v", err)
	}
}

func TestParsePIDRecord(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		wantErr bool
	}{
		{`{"pid":42,"start":7,"path":"/usr/bin/etcd"}`, false},
		{`{"pid":1,"start":7,"path":"/sbin/init"}`, true}, // never kill init
		{`{"pid":-5,"start":7,"path":"/x"}`, true},
		{`{"pid":42,"start":7}`, true},
		{`42`, true},
		{``, true},
	} {
		if _, err := parsePIDRecord([]byte(tc.in)); (err != nil) != tc.wantErr {
			t.Errorf("%s: err %v, want error=%v", tc.in, err, tc.wantErr)
		}
	}
}

func FuzzParsePIDRecord(f *testing.F) {
	f.Add([]byte(`{"pid":42,"start":7,"path":"/usr/bin/etcd"}`))
	f.Add([]byte(`{"pid":1e9}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parsePIDRecord(data)
		if err == nil && (r.PID <= 1 || r.Path == "") {
			t.Errorf("accepted %+v", r)
		}
	})
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := Process{Name: "etcd", Path: "/usr/bin/etcd", LogDir: "/var/log/gravity", Ports: []int{2379}}
	for _, tc := range []struct {
		name   string
		mutate func(*Process)
		want   string
	}{
		{"valid", func(*Process) {}, ""},
		{"no name", func(p *Process) { p.Name = "" }, "process name"},
		{"slash in name", func(p *Process) { p.Name = "../etcd" }, "process name"},
		{"no path", func(p *Process) { p.Path = "" }, "no path"},
		{"no log dir", func(p *Process) { p.LogDir = "" }, "no log directory"},
		{"min over max", func(p *Process) { p.RestartBackoff = Backoff{Min: time.Second, Max: time.Millisecond} }, "bad restart backoff"},
		{"negative stop", func(p *Process) { p.StopTimeout = -1 }, "negative timeout"},
		{"port 0", func(p *Process) { p.Ports = []int{0} }, "bad port 0"},
		{"port too big", func(p *Process) { p.Ports = []int{65536} }, "bad port 65536"},
	} {
		p := ok
		tc.mutate(&p)
		err := p.validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := New(Config{RunDir: t.TempDir(), Processes: []Process{ok, ok}}); err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := New(Config{Processes: []Process{ok}}); err == nil {
		t.Error("no run dir accepted")
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	b := Process{RestartBackoff: Backoff{Min: 500 * time.Millisecond}}.withDefaults().RestartBackoff
	var got []time.Duration
	var d time.Duration
	for range 8 {
		d = b.next(d)
		got = append(got, d)
	}
	want := []time.Duration{500, 1000, 2000, 4000, 8000, 16000, 30000, 30000}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(got, want) || b.Reset != DefaultBackoffReset {
		t.Errorf("delays %v (reset %v), want %v (reset %v)", got, b.Reset, want, DefaultBackoffReset)
	}
}

func TestCommandLine(t *testing.T) {
	t.Parallel()
	got := commandLine("/bin/etcd", []string{"--name=a", "", "two words", `q"uote`})
	want := `/bin/etcd --name=a "" "two words" "q\"uote"`
	if got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

func TestProbes(t *testing.T) {
	t.Parallel()
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
		fmt.Fprint(w, "[-]etcd failed")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted-certificate case logs a handshake error
	srv.StartTLS()
	defer srv.Close()
	ctx := context.Background()
	probe := HTTPProbe(srv.URL+"/readyz", srv.Client().Transport.(*http.Transport).TLSClientConfig)
	if err := probe(ctx); err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "etcd failed") {
		t.Errorf("503: %v", err)
	}
	status.Store(http.StatusOK)
	if err := probe(ctx); err != nil {
		t.Errorf("200: %v", err)
	}
	if err := HTTPProbe(srv.URL, nil)(ctx); err == nil {
		t.Error("an untrusted certificate passed")
	}
	if err := TCPProbe(srv.Listener.Addr().String())(ctx); err != nil {
		t.Errorf("tcp to a listener: %v", err)
	}
	if err := TCPProbe(fmt.Sprintf("127.0.0.1:%d", freePort(t)))(ctx); err == nil {
		t.Error("tcp to a closed port passed")
	}
}
