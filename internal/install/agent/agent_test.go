package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/opengravity/gravity/internal/pki"
)

const (
	testToken      = "s3cret-join-token"
	testServerName = "gravity-installer"
	childEnv       = "GRAVITY_AGENT_TEST_CHILD"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childAgent())
	}
	os.Exit(m.Run())
}

// childAgent is the agent running as its own process: the test binary
// re-executed with childEnv pointing at a directory of certificates.
func childAgent() int {
	dir := os.Getenv(childEnv)
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		return b
	}
	kp, err := pki.ParseKeyPair(read("agent.crt"), read("agent.key"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	caCert, err := pki.ParseCertificatePEM(read("ca.crt"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ca := &pki.CA{KeyPair: pki.KeyPair{Cert: caCert}}
	info, err := LocalNodeInfo("127.0.0.9", "node")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	err = RunAgent(ctx, AgentConfig{
		Addr:  string(read("addr")),
		TLS:   &tls.Config{Certificates: []tls.Certificate{kp.TLSCertificate()}, RootCAs: ca.Pool(), ServerName: testServerName},
		Token: testToken,
		Info:  info,
		Log:   testLog(),
		Retry: 50 * time.Millisecond,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func testLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testPKI struct {
	ca     *pki.CA
	server *pki.KeyPair
	client *pki.KeyPair
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	// The CA outlives its leaves: Issue refuses a leaf that would not, and
	// certificates keep whole seconds only.
	ca, err := pki.NewCA("gravity-install-ca", 2*time.Hour, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.Issue(pki.Request{CommonName: testServerName, DNSNames: []string{testServerName},
		IPs: []net.IP{net.ParseIP("127.0.0.1")}, Usages: pki.UsageServer, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// The client stands for every node the tests' agents claim to be.
	client, err := ca.Issue(pki.Request{CommonName: "agent", Usages: pki.UsageClient, Validity: time.Hour,
		IPs: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("127.0.0.5"), net.ParseIP("127.0.0.9"), net.ParseIP("10.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{ca: ca, server: server, client: client}
}

func (p *testPKI) serverTLS() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{p.server.TLSCertificate()},
		ClientCAs:    p.ca.Pool(),
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
}

func (p *testPKI) clientTLS() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{p.client.TLSCertificate()},
		RootCAs:      p.ca.Pool(),
		ServerName:   testServerName,
	}
}

// startServer serves on addr ("127.0.0.1:0" for any port) until the test ends.
func startServer(t *testing.T, p *testPKI, addr string) (*Server, string) {
	t.Helper()
	srv, err := NewServer(ServerConfig{TLS: p.serverTLS(), Token: testToken, Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil {
			t.Logf("serve: %v", err)
		}
	}()
	t.Cleanup(func() { srv.Stop(); <-done })
	return srv, ln.Addr().String()
}

// startAgent runs an agent in this process; the returned channel gets its result.
func startAgent(t *testing.T, cfg AgentConfig) <-chan error {
	t.Helper()
	if cfg.Info.AdvertiseIP == "" {
		cfg.Info = NodeInfo{Hostname: "node-1", AdvertiseIP: "127.0.0.1", Role: "master"}
	}
	if cfg.Token == "" {
		cfg.Token = testToken
	}
	cfg.Log = testLog()
	cfg.Retry = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		errc <- RunAgent(ctx, cfg)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return errc
}

// agentPeer starts a server and one agent and returns the agent's peer.
func agentPeer(t *testing.T) (*Server, *Peer) {
	t.Helper()
	p := newTestPKI(t)
	srv, addr := startServer(t, p, "127.0.0.1:0")
	startAgent(t, AgentConfig{Addr: addr, TLS: p.clientTLS()})
	peers := waitAgents(t, srv, 1)
	return srv, peers[0]
}

func waitAgents(t *testing.T, srv *Server, n int) []*Peer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	peers, err := srv.WaitAgents(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return peers
}

// syncBuffer is written by a peer's receive loop while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitLines waits until b holds n complete lines and returns them.
func (b *syncBuffer) waitLines(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := b.String()
		if strings.Count(s, "\n") >= n {
			return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d lines, have %q", n, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type runResult struct {
	code int
	err  error
}

func runAsync(ctx context.Context, p *Peer, cmd Command, stdout, stderr *syncBuffer) <-chan runResult {
	out := make(chan runResult, 1)
	go func() {
		code, err := p.Run(ctx, cmd, stdout, stderr)
		out <- runResult{code, err}
	}()
	return out
}

func waitResult(t *testing.T, c <-chan runResult) runResult {
	t.Helper()
	select {
	case r := <-c:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	return runResult{}
}

// pidGone reports whether pid has exited; a zombie counts, since it only
// waits for a reaper that a container's init may never be.
func pidGone(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(data)
	rest := s[strings.LastIndex(s, ")")+1:]
	fields := strings.Fields(rest)
	return len(fields) > 0 && fields[0] == "Z"
}

func waitPidGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !pidGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sh(script string) Command { return Command{Args: []string{"/bin/sh", "-c", script}} }

func TestRunStreamsOutputInOrderAndExitCodes(t *testing.T) {
	_, peer := agentPeer(t)
	if info := peer.Info(); info.Hostname != "node-1" || info.Role != "master" || info.AdvertiseIP != "127.0.0.1" {
		t.Errorf("peer info = %+v", info)
	}
	ctx := context.Background()
	var stdout, stderr bytes.Buffer
	code, err := peer.Run(ctx, sh(`for i in $(seq 1 5000); do echo "line $i"; done; echo oops >&2; exit 3`), &stdout, &stderr)
	if err != nil || code != 3 {
		t.Fatalf("Run = %d, %v; want 3, nil", code, err)
	}
	var want strings.Builder
	for i := 1; i <= 5000; i++ {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	if stdout.String() != want.String() {
		t.Errorf("stdout out of order or incomplete: %d bytes, want %d", stdout.Len(), want.Len())
	}
	if stderr.String() != "oops\n" {
		t.Errorf("stderr = %q", stderr.String())
	}
	stdout.Reset()
	code, err = peer.Run(ctx, Command{Args: []string{"/bin/sh", "-c", `echo "$GRAVITY_X"`}, Env: []string{"GRAVITY_X=phase"}}, &stdout, nil)
	if err != nil || code != 0 || stdout.String() != "phase\n" {
		t.Errorf("Run with env = %d, %v, %q", code, err, stdout.String())
	}
}

func TestRunStreamsBeforeExit(t *testing.T) {
	_, peer := agentPeer(t)
	var stdout syncBuffer
	dir := t.TempDir()
	res := runAsync(context.Background(), peer, sh(`echo first; while [ ! -e `+dir+`/go ]; do sleep 0.02; done; echo second`), &stdout, nil)
	if got := stdout.waitLines(t, 1); got[0] != "first" {
		t.Fatalf("first line = %q", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := waitResult(t, res); r.err != nil || r.code != 0 || stdout.String() != "first\nsecond\n" {
		t.Errorf("Run = %d, %v, %q", r.code, r.err, stdout.String())
	}
}

func TestRunStdin(t *testing.T) {
	_, peer := agentPeer(t)
	in := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	var stdout bytes.Buffer
	code, err := peer.Run(context.Background(), Command{Args: []string{"cat"}, Stdin: in}, &stdout, nil)
	if err != nil || code != 0 {
		t.Fatalf("Run = %d, %v", code, err)
	}
	if !bytes.Equal(stdout.Bytes(), in) {
		t.Errorf("stdin round trip: got %d bytes, want %d", stdout.Len(), len(in))
	}
}

func TestRunStartFailure(t *testing.T) {
	_, peer := agentPeer(t)
	code, err := peer.Run(context.Background(), Command{Args: []string{"/nonexistent/gravity"}}, nil, nil)
	if err == nil || code != -1 || !strings.Contains(err.Error(), "/nonexistent/gravity") {
		t.Errorf("Run = %d, %v; want -1 and an error naming the binary", code, err)
	}
}

func TestCancelKillsProcessGroup(t *testing.T) {
	_, peer := agentPeer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout syncBuffer
	// The shell is the group leader; sleep is its child, which only a
	// group kill reaches.
	res := runAsync(ctx, peer, sh(`sleep 60 & echo $$; echo $!; wait`), &stdout, nil)
	lines := stdout.waitLines(t, 2)
	var pids []int
	for _, l := range lines {
		pid, err := strconv.Atoi(l)
		if err != nil {
			t.Fatalf("pid line %q: %v", l, err)
		}
		pids = append(pids, pid)
	}
	start := time.Now()
	cancel()
	r := waitResult(t, res)
	if !errors.Is(r.err, context.Canceled) {
		t.Errorf("Run after cancel = %d, %v; want context.Canceled", r.code, r.err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %v", d)
	}
	for _, pid := range pids {
		waitPidGone(t, pid)
	}
}

func TestConcurrentCommandsOnOneAgent(t *testing.T) {
	_, peer := agentPeer(t)
	dir := t.TempDir()
	var outA, outB syncBuffer
	// A can only finish once B has run, so this deadlocks unless the agent
	// runs both at once.
	resA := runAsync(context.Background(), peer, sh(`echo waiting; while [ ! -e `+dir+`/b ]; do sleep 0.02; done; echo A`), &outA, nil)
	outA.waitLines(t, 1)
	resB := runAsync(context.Background(), peer, sh(`touch `+dir+`/b; echo B; exit 7`), &outB, nil)
	if r := waitResult(t, resB); r.err != nil || r.code != 7 || outB.String() != "B\n" {
		t.Errorf("B = %d, %v, %q", r.code, r.err, outB.String())
	}
	if r := waitResult(t, resA); r.err != nil || r.code != 0 || outA.String() != "waiting\nA\n" {
		t.Errorf("A = %d, %v, %q", r.code, r.err, outA.String())
	}
}

// rawConnect opens the stream the way an agent does and reports whether the
// installer welcomed it.
func rawConnect(t *testing.T, addr string, cfg *tls.Config, token string) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
		grpc.WithDefaultCallOptions(grpc.CallContentSubtype(codecName)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, tokenHeader, token)
	}
	stream, err := conn.NewStream(ctx, &serviceDesc.Streams[0], connectMethod)
	if err != nil {
		return err
	}
	if err := stream.SendMsg(&agentMsg{Hello: &NodeInfo{AdvertiseIP: "127.0.0.5"}}); err != nil {
		// The server's verdict arrives with the next receive.
		t.Logf("send hello: %v", err)
	}
	var m serverMsg
	if err := stream.RecvMsg(&m); err != nil {
		return err
	}
	if !m.Welcome {
		return errors.New("not welcomed")
	}
	return nil
}

func TestTokenChecked(t *testing.T) {
	p := newTestPKI(t)
	srv, addr := startServer(t, p, "127.0.0.1:0")
	if err := rawConnect(t, addr, p.clientTLS(), testToken); err != nil {
		t.Fatalf("right token refused: %v", err)
	}
	for _, token := range []string{"", "wrong", testToken + "x"} {
		if err := rawConnect(t, addr, p.clientTLS(), token); status.Code(err) != codes.Unauthenticated {
			t.Errorf("token %q: got %v, want Unauthenticated", token, err)
		}
	}
	// A real agent with a wrong token gives up instead of retrying forever.
	errc := startAgent(t, AgentConfig{Addr: addr, TLS: p.clientTLS(), Token: "wrong"})
	select {
	case err := <-errc:
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("RunAgent with wrong token = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agent with a wrong token kept running")
	}
	if n := len(srv.Peers()); n != 0 {
		t.Errorf("%d peers registered by refused agents", n)
	}
}

func TestClientCertificateChecked(t *testing.T) {
	p := newTestPKI(t)
	srv, addr := startServer(t, p, "127.0.0.1:0")
	other := newTestPKI(t)
	foreign := p.clientTLS()
	foreign.Certificates = []tls.Certificate{other.client.TLSCertificate()}
	if err := rawConnect(t, addr, foreign, testToken); err == nil {
		t.Error("client certificate from another CA accepted")
	} else {
		t.Logf("foreign certificate refused: %v", err)
	}
	noCert := p.clientTLS()
	noCert.Certificates = nil
	if err := rawConnect(t, addr, noCert, testToken); err == nil {
		t.Error("client without certificate accepted")
	} else {
		t.Logf("no certificate refused: %v", err)
	}
	if n := len(srv.Peers()); n != 0 {
		t.Errorf("%d peers registered without a valid certificate", n)
	}
}

func TestAgentIdentityFromCertificate(t *testing.T) {
	p := newTestPKI(t)
	srv, addr := startServer(t, p, "127.0.0.1:0")
	// rawConnect's agent says it is 127.0.0.5; this certificate is for
	// another node only.
	other, err := p.ca.Issue(pki.Request{CommonName: "agent", Usages: pki.UsageClient, Validity: time.Hour,
		IPs: []net.IP{net.ParseIP("127.0.0.6")}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := p.clientTLS()
	cfg.Certificates = []tls.Certificate{other.TLSCertificate()}
	if err := rawConnect(t, addr, cfg, testToken); status.Code(err) != codes.PermissionDenied {
		t.Errorf("agent claiming a node its certificate does not name: got %v, want PermissionDenied", err)
	}
	if n := len(srv.Peers()); n != 0 {
		t.Errorf("%d peers registered under another node's name", n)
	}
	if err := rawConnect(t, addr, p.clientTLS(), testToken); err != nil {
		t.Errorf("agent whose certificate names its node refused: %v", err)
	}
}

func TestNewServerRequiresMutualTLS(t *testing.T) {
	p := newTestPKI(t)
	cfg := p.serverTLS()
	cfg.ClientAuth = tls.VerifyClientCertIfGiven
	if _, err := NewServer(ServerConfig{TLS: cfg, Token: testToken}); err == nil {
		t.Error("server without required client certificates accepted")
	}
	if _, err := NewServer(ServerConfig{TLS: p.serverTLS()}); err == nil {
		t.Error("server without token accepted")
	}
}

func TestAgentReconnectsAfterServerRestart(t *testing.T) {
	p := newTestPKI(t)
	srv1, addr := startServer(t, p, "127.0.0.1:0")
	startAgent(t, AgentConfig{Addr: addr, TLS: p.clientTLS()})
	peer := waitAgents(t, srv1, 1)[0]
	var stdout syncBuffer
	res := runAsync(context.Background(), peer, sh(`echo $$; exec sleep 60`), &stdout, nil)
	pid, err := strconv.Atoi(stdout.waitLines(t, 1)[0])
	if err != nil {
		t.Fatal(err)
	}
	srv1.Stop()
	r := waitResult(t, res)
	if r.err == nil || !strings.Contains(r.err.Error(), "127.0.0.1") {
		t.Errorf("pending Run after the installer stopped = %d, %v; want an error naming the node", r.code, r.err)
	}
	t.Logf("pending Run failed with: %v", r.err)
	// The agent kills what the lost installer started.
	waitPidGone(t, pid)
	if _, err := peer.Run(context.Background(), sh("true"), nil, nil); err == nil {
		t.Error("Run on a peer of a stopped installer succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := srv1.WaitAgents(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitAgents on a stopped installer = %v, want a deadline error", err)
	}

	srv2, _ := startServer(t, p, addr)
	peer = waitAgents(t, srv2, 1)[0]
	var out bytes.Buffer
	if code, err := peer.Run(context.Background(), sh("echo again"), &out, nil); err != nil || code != 0 || out.String() != "again\n" {
		t.Errorf("Run after reconnect = %d, %v, %q", code, err, out.String())
	}
}

func TestSameNodeReplacesPeer(t *testing.T) {
	p := newTestPKI(t)
	srv, addr := startServer(t, p, "127.0.0.1:0")
	info := NodeInfo{Hostname: "node-1", AdvertiseIP: "10.0.0.1"}
	errA := startAgent(t, AgentConfig{Addr: addr, TLS: p.clientTLS(), Info: info})
	old := waitAgents(t, srv, 1)[0]
	var stdout syncBuffer
	res := runAsync(context.Background(), old, sh(`echo started; exec sleep 60`), &stdout, nil)
	stdout.waitLines(t, 1)

	info.Hostname = "node-1-again"
	startAgent(t, AgentConfig{Addr: addr, TLS: p.clientTLS(), Info: info})
	if r := waitResult(t, res); r.err == nil || !strings.Contains(r.err.Error(), "replaced") {
		t.Errorf("Run on the replaced peer = %d, %v; want a replaced error", r.code, r.err)
	}
	select {
	case err := <-errA:
		if status.Code(err) != codes.Aborted {
			t.Errorf("replaced agent returned %v, want Aborted", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("replaced agent kept running")
	}
	cur := srv.Peer("10.0.0.1")
	if cur == nil || cur == old || cur.Info().Hostname != "node-1-again" {
		t.Fatalf("current peer = %+v", cur)
	}
	if code, err := cur.Run(context.Background(), sh("exit 0"), nil, nil); err != nil || code != 0 {
		t.Errorf("Run on the new peer = %d, %v", code, err)
	}
	if n := len(srv.Peers()); n != 1 {
		t.Errorf("%d peers, want 1", n)
	}
}

// TestAgentInItsOwnProcess runs the agent as a separate process, as it runs
// on a node, and drives it through the Server.
func TestAgentInItsOwnProcess(t *testing.T) {
	p := newTestPKI(t)
	srv, addr := startServer(t, p, "127.0.0.1:0")
	dir := t.TempDir()
	keyPEM, err := p.client.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"agent.crt": p.client.CertPEM(), "agent.key": keyPEM,
		"ca.crt": p.ca.CertPEM(), "addr": []byte(addr)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})

	peer := waitAgents(t, srv, 1)[0]
	info := peer.Info()
	if info.AdvertiseIP != "127.0.0.9" || info.CPUs < 1 || info.MemoryBytes == 0 || info.Version == "" {
		t.Errorf("child agent info = %+v", info)
	}
	var stdout bytes.Buffer
	code, err := peer.Run(context.Background(), sh(`echo $PPID; exit 3`), &stdout, nil)
	if err != nil || code != 3 {
		t.Fatalf("Run = %d, %v", code, err)
	}
	if got := strings.TrimSpace(stdout.String()); got != strconv.Itoa(cmd.Process.Pid) {
		t.Errorf("command's parent = %s, want the agent process %d", got, cmd.Process.Pid)
	}
	// A command still running when the agent goes away is killed with it,
	// and the installer's Run fails instead of hanging.
	var pidOut syncBuffer
	res := runAsync(context.Background(), peer, sh(`echo $$; exec sleep 60`), &pidOut, nil)
	pid, err := strconv.Atoi(pidOut.waitLines(t, 1)[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if r := waitResult(t, res); r.err == nil || !strings.Contains(r.err.Error(), "agent disconnected") {
		t.Errorf("Run pending when the agent left = %d, %v; want an agent disconnected error", r.code, r.err)
	} else {
		t.Logf("pending Run failed with: %v", r.err)
	}
	waitPidGone(t, pid)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("agent process exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agent process ignored SIGTERM")
	}
	select {
	case <-peer.Done():
	case <-time.After(10 * time.Second):
		t.Error("installer did not notice the agent leaving")
	}
}

func TestLocalNodeInfo(t *testing.T) {
	info, err := LocalNodeInfo("10.0.0.1", "master")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if info.Hostname != host || info.AdvertiseIP != "10.0.0.1" || info.Role != "master" ||
		info.CPUs < 1 || info.MemoryBytes < 1<<20 || info.OS == "" || info.Version == "" {
		t.Errorf("LocalNodeInfo = %+v", info)
	}
}

func TestOSName(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]string{
		"NAME=\"Ubuntu\"\nPRETTY_NAME=\"Ubuntu 24.04.1 LTS\"\nID=ubuntu\n": "Ubuntu 24.04.1 LTS",
		"ID='rhel'\nVERSION_ID=\"9.4\"\n":                                  "rhel 9.4",
		"":                                                                 "linux",
	} {
		path := filepath.Join(dir, "os-release")
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := osName(path); got != want {
			t.Errorf("osName(%q) = %q, want %q", content, got, want)
		}
	}
}

// TestTokenExpiry: the right token is refused from its expiry on, by a
// clock, not by waiting.
func TestTokenExpiry(t *testing.T) {
	p := newTestPKI(t)
	expires := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		now  time.Time
		want codes.Code
	}{
		{expires.Add(-time.Second), codes.OK},
		{expires, codes.Unauthenticated},
		{expires.Add(time.Hour), codes.Unauthenticated},
	} {
		srv, err := NewServer(ServerConfig{TLS: p.serverTLS(), Token: testToken, TokenExpires: expires, Log: testLog(),
			now: func() time.Time { return tc.now }})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Serve(ln) }()
		err = rawConnect(t, ln.Addr().String(), p.clientTLS(), testToken)
		srv.Stop()
		if got := status.Code(err); got != tc.want || tc.want != codes.OK && !strings.Contains(err.Error(), "expired") {
			t.Errorf("at %v: %v, want %v", tc.now, err, tc.want)
		}
	}
}
