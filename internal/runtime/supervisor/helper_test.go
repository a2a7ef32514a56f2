package supervisor

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the supervised program (as k0s's pingpong
// does): with helperEnv set, TestMain runs helperMain instead of the tests.
const (
	helperEnv = "SUPERVISOR_TEST_HELPER"
	markEnv   = "SUPERVISOR_TEST_MARK" // unique per test; found in /proc
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "daemonize":
		os.Exit(daemonizeMain())
	case "supervise":
		os.Exit(superviseMain())
	default:
		os.Exit(helperMain(os.Args[1:]))
	}
}

// helperMain is a configurable misbehaving program.
func helperMain(args []string) int {
	fs := flag.NewFlagSet("helper", flag.ContinueOnError)
	name := fs.String("name", "helper", "name used in -record lines")
	record := fs.String("record", "", "append '<name> <event>' lines to this file")
	listen := fs.Int("listen", 0, "listen on 127.0.0.1:PORT")
	listenDelay := fs.Duration("listen-delay", 0, "wait before listening")
	print := fs.String("print", "", "print this line on stdout and stderr")
	exitCode := fs.Int("exit", -1, "exit with this code after -after")
	after := fs.Duration("after", 0, "see -exit")
	ignoreTerm := fs.Bool("ignore-term", false, "ignore SIGTERM")
	grandchild := fs.Bool("grandchild", false, "spawn a child that outlives nothing")
	stallOnce := fs.String("stall-once", "", "the first start (this file absent: it is made) never listens")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rec := func(event string) { appendLine(*record, *name+" "+event) }
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM)
	rec("start")
	if *print != "" {
		fmt.Println(*print)
		fmt.Fprintln(os.Stderr, "stderr: "+*print)
	}
	if *grandchild {
		gc := exec.Command(os.Args[0], "-name", *name+"-grandchild", "-record", *record)
		gc.Stdout, gc.Stderr = os.Stdout, os.Stderr
		if err := gc.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "grandchild:", err)
			return 1
		}
		fmt.Println("grandchild", gc.Process.Pid)
	}
	if *stallOnce != "" {
		if _, err := os.Stat(*stallOnce); os.IsNotExist(err) {
			appendLine(*stallOnce, "stalled")
			*listen = 0
		}
	}
	if *listen > 0 {
		time.Sleep(*listenDelay)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(*listen))
		if err != nil {
			fmt.Fprintln(os.Stderr, "listen:", err)
			return 1
		}
		defer ln.Close()
		go acceptAll(ln)
		rec("listening")
	}
	var exitAfter <-chan time.Time
	if *exitCode >= 0 {
		exitAfter = time.After(*after)
	}
	for {
		select {
		case <-exitAfter:
			rec("exit")
			return *exitCode
		case <-terms:
			if *ignoreTerm {
				rec("ignored-term")
				continue
			}
			rec("stop")
			return 0
		}
	}
}

func acceptAll(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

func appendLine(path, line string) {
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line + "\n"); err != nil {
		panic(err)
	}
}

// daemonizeMain calls Daemonize (the daemon is this binary as a helper that
// prints and waits), prints the daemon's pid and exits.
func daemonizeMain() int {
	os.Setenv(helperEnv, "1")
	pid, err := Daemonize([]string{"-print", "daemon up"}, os.Getenv("DAEMON_LOG"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(pid)
	return 0
}

// superviseMain runs a Supervisor of one helper with a grandchild, says
// "started" and waits to be killed: a supervisor that dies without Stop.
func superviseMain() int {
	s, err := New(Config{RunDir: os.Getenv("RUN_DIR"), Processes: []Process{{
		Name: "leftover", Path: os.Args[0], Args: []string{"-grandchild"},
		Env:    []string{helperEnv + "=1", markEnv + "=" + os.Getenv("LEFTOVER_MARK")},
		LogDir: os.Getenv("LOG_DIR"),
	}}})
	if err == nil {
		err = s.Start(context.Background())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("started")
	select {}
}

// helper returns a Process running this test binary as helperMain, marked so
// that tests can find every process it spawned in /proc.
func helper(t *testing.T, name, mark string, args ...string) Process {
	t.Helper()
	return Process{
		Name: name, Path: os.Args[0], Args: args,
		Env:            []string{helperEnv + "=1", markEnv + "=" + mark},
		LogDir:         filepath.Join(t.TempDir(), "log"),
		RestartBackoff: Backoff{Min: 50 * time.Millisecond, Max: 200 * time.Millisecond},
		StopTimeout:    long,
		ReadyTimeout:   5 * time.Second,
	}
}

// newMark returns a marker unique to the test; whatever carries it is
// killed when the test ends, so a failing test leaks nothing.
func newMark(t *testing.T) string {
	mark := fmt.Sprintf("%s-%d-%d", t.Name(), os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() {
		for _, pid := range marked(mark) {
			_ = syscall.Kill(pid, syscall.SIGKILL) // best effort: the test has its verdict
		}
	})
	return mark
}

// long bounds waits that only a failure should exhaust: the machine may be
// loaded (a -race build, fuzzers in other packages) and a tight bound flakes.
const long = 20 * time.Second

// marked returns the live processes carrying mark.
func marked(mark string) []int { return withEnv(markEnv + "=" + mark) }

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// eventually polls cond until it holds or the timeout ends.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// listen holds a loopback port, as a foreign process would.
func listen(t *testing.T) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, ln.Addr().(*net.TCPAddr).Port
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
