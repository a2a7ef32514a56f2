// Command kube is the Kubernetes node and control-plane components as one
// multicall binary, the way k3s ships them: the six components share most of
// their packages, so one binary is about a quarter of the size of six.
//
// It runs the component named by the name it was invoked as (a symlink or
// hard link called kubelet, kube-apiserver, ...) or, when invoked as kube,
// by its first argument: `kube kubectl get pods`.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	_ "time/tzdata" // CronJob time zones, as upstream's apiserver and controller-manager

	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as every upstream main
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as every upstream main
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as every upstream main
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"

	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl's client auth plugins, as upstream's kubectl
)

// components maps each component's name to a main that returns its exit code.
var components = map[string]func() int{
	"kube-apiserver":          func() int { return cli.Run(apiserver.NewAPIServerCommand()) },
	"kube-controller-manager": func() int { return cli.Run(controllermanager.NewControllerManagerCommand()) },
	"kube-scheduler":          func() int { return cli.Run(scheduler.NewSchedulerCommand()) },
	"kubelet":                 func() int { return cli.Run(kubelet.NewKubeletCommand(context.Background())) },
	"kube-proxy":              func() int { return cli.Run(proxy.NewProxyCommand()) },
	"kubectl":                 runKubectl,
}

// runKubectl mirrors upstream's cmd/kubectl: verbosity is set before the
// command is built because building it already logs (plugins, .kuberc).
func runKubectl() int {
	logs.GlogSetter(kubectlcmd.GetLogVerbosity(os.Args)) // nolint:errcheck
	command := kubectlcmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		kubectlutil.CheckErr(err) // prints the error and exits non-zero
	}
	return 0
}

func main() {
	name := filepath.Base(os.Args[0])
	if _, ok := components[name]; !ok && len(os.Args) > 1 {
		// `kube kubelet --flags`: drop our own name so the component sees
		// the argv it expects, with its name first.
		name = os.Args[1]
		os.Args = os.Args[1:]
	}
	run, ok := components[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "usage: kube COMPONENT [ARGS...], or invoke through a link named after it\ncomponents: %s\n",
			strings.Join(names(), ", "))
		os.Exit(2)
	}
	os.Exit(run())
}

func names() []string {
	out := make([]string, 0, len(components))
	for n := range components {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
