package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/opengravity/gravity/internal/runtime/apilb"
	"github.com/opengravity/gravity/internal/runtime/config"
)

// TestMain lets the test binary stand in for the runtime's binaries: run
// through a link named containerd, kubelet or kube-proxy (see fakeBinDir), it plays that
// component; as runtime-daemon it holds a run directory like Run does.
func TestMain(m *testing.M) {
	switch filepath.Base(os.Args[0]) {
	case "containerd":
		os.Exit(fakeContainerd(os.Args[1:]))
	case "kubelet", "kube-proxy":
		os.Exit(fakeKube(filepath.Base(os.Args[0])))
	case "runtime-daemon":
		os.Exit(fakeDaemon(os.Args[1:]))
	}
	// As the gravity binary, it starts kubelet the way `gravity runtime
	// kubelet-exec` does: the real ExecWithKernelView.
	if len(os.Args) > 5 && os.Args[1] == "runtime" && os.Args[2] == KubeletExecCommand && os.Args[5] == "--" {
		err := ExecWithKernelView(os.Args[4], config.KernelTunables(), os.Args[6:], os.Environ())
		fmt.Fprintln(os.Stderr, "kubelet-exec:", err)
		os.Exit(1)
	}
	// As the gravity binary, it plays the pod network agent, the node
	// agent, the SSH service and the access proxy: healthy at once (the node agent has its own tests).
	if len(os.Args) > 2 && os.Args[1] == "runtime" && (os.Args[2] == PodNetworkCommand || os.Args[2] == AgentCommand ||
		os.Args[2] == SSHCommand || os.Args[2] == AccessProxyCommand) {
		os.Exit(fakeHealthy(os.Args[3:]))
	}
	// ... and the worker's API load balancer, the real one.
	if len(os.Args) > 2 && os.Args[1] == "runtime" && os.Args[2] == APILBCommand {
		os.Exit(runAPILB(os.Args[3:]))
	}
	os.Exit(m.Run())
}

// runAPILB runs the balancer on --listen for --backend flags.
func runAPILB(args []string) int {
	var listen string
	var backends []string
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case "--listen":
			listen = args[i+1]
		case "--backend":
			backends = append(backends, args[i+1])
		}
	}
	if err := apilb.New(listen, backends, nil).Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "api-lb:", err)
		return 1
	}
	return 0
}

// fakeHealthy answers /healthz on --health-addr.
func fakeHealthy(args []string) int {
	i := slices.Index(args, "--health-addr")
	if i < 0 || i+1 >= len(args) {
		fmt.Fprintln(os.Stderr, "fake component: no --health-addr")
		return 2
	}
	ln, err := net.Listen("tcp", args[i+1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake component:", err)
		return 1
	}
	return serve(ln)
}

// fakeContainerd serves its config's gRPC socket: `containerd --config F`.
func fakeContainerd(args []string) int {
	if len(args) != 2 || args[0] != "--config" {
		fmt.Fprintln(os.Stderr, "fake containerd: usage: containerd --config FILE")
		return 2
	}
	var cfg struct{ GRPC struct{ Address string } }
	if _, err := toml.DecodeFile(args[1], &cfg); err != nil || cfg.GRPC.Address == "" {
		fmt.Fprintln(os.Stderr, "fake containerd: config:", err)
		return 1
	}
	if err := os.MkdirAll(filepath.Dir(cfg.GRPC.Address), 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "fake containerd:", err)
		return 1
	}
	_ = os.Remove(cfg.GRPC.Address) // a killed predecessor's socket
	ln, err := net.Listen("unix", cfg.GRPC.Address)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake containerd:", err)
		return 1
	}
	return serve(ln)
}

// fakeKube answers /healthz where kubelet and kube-proxy do.
func fakeKube(component string) int {
	ports := map[string]int{"kubelet": KubeletHealthzPort, "kube-proxy": KubeProxyHealthzPort}
	ln, err := net.Listen("tcp", hostPort(loopback, ports[component]))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake kube:", err)
		return 1
	}
	return serve(ln)
}

func serve(ln net.Listener) int {
	fmt.Println("fake serving on", ln.Addr())
	err := http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	fmt.Fprintln(os.Stderr, "fake:", err)
	return 1
}

// fakeDaemon holds the PID file of its run directory until SIGTERM.
func fakeDaemon(args []string) int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	f, err := takePIDFile(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	<-term
	releasePIDFile(f, slog.Default())
	return 0
}

// fakeBinDir links the test binary under the given names in a new
// directory.
func fakeBinDir(t *testing.T, names ...string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, n := range names {
		if err := os.Symlink(self, filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
