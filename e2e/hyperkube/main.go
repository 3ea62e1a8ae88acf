// Command hyperkube links the upstream Kubernetes control-plane components
// (k8s.io/kubernetes v1.36.3) and an embedded etcd into one binary, so the
// local test cluster needs neither a container engine nor separate
// downloads. The component is picked from os.Args[1] ("hyperkube
// kube-apiserver ...") or, failing that, from the basename of argv[0]
// (a symlink named kube-apiserver pointing at hyperkube).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	_ "time/tzdata" // for CronJob time zone support (as upstream's apiserver/KCM mains)

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go prometheus plugins
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric registration
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

// commands maps a subcommand name to the upstream cobra constructor; each
// is run via cli.Run exactly as upstream's cmd/<name>/<name>.go does.
var commands = map[string]func() *cobra.Command{
	"kube-apiserver":          apiserver.NewAPIServerCommand,
	"kube-controller-manager": controllermanager.NewControllerManagerCommand,
	"kube-scheduler":          func() *cobra.Command { return scheduler.NewSchedulerCommand() },
	"kube-proxy":              proxy.NewProxyCommand,
}

func main() {
	name, args := pick(os.Args)
	if name == "" {
		usage()
		os.Exit(2)
	}
	if name == "etcd" {
		os.Exit(runEtcd(args))
	}
	cmd := commands[name]()
	cmd.SetArgs(args)
	os.Exit(cli.Run(cmd))
}

// pick returns the component to run and its arguments.
func pick(argv []string) (string, []string) {
	if len(argv) > 1 && known(argv[1]) {
		return argv[1], argv[2:]
	}
	if base := filepath.Base(argv[0]); known(base) {
		return base, argv[1:]
	}
	return "", nil
}

func known(name string) bool {
	_, ok := commands[name]
	return ok || name == "etcd"
}

func usage() {
	names := []string{"etcd"}
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "usage: %s <component> [flags]\n  (or invoke through a symlink named after the component)\ncomponents:\n", filepath.Base(os.Args[0]))
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %s\n", n)
	}
}
