package kind

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The fakes record every call in $FAKE_STATE/calls, one line each.
const (
	// fakeKind keeps its clusters in $FAKE_STATE/clusters; its nodes are <cluster>-control-plane,
	// -worker and -worker2, as kind names those of hack/kind/cluster.yaml.
	fakeKind = `
echo "kind $*" >>"$FAKE_STATE/calls"
touch "$FAKE_STATE/clusters"
arg() { local want=$1; shift; while [ $# -gt 0 ]; do [ "$1" = "$want" ] && { echo "$2"; return; }; shift; done; }
case "$1 $2" in
"get clusters") cat "$FAKE_STATE/clusters" ;;
"create cluster")
	cp "$(arg --config "$@")" "$FAKE_STATE/cluster.yaml" || exit 1
	echo "$(arg --name "$@")" >>"$FAKE_STATE/clusters"
	echo "apiVersion: v1" >"$(arg --kubeconfig "$@")" ;;
"load image-archive") [ -f "${!#}" ] || { echo "no archive ${!#}" >&2; exit 1; } ;;
"get nodes") n=$(arg --name "$@"); printf '%s\n' "$n-worker2" "$n-control-plane" "$n-worker" ;;
"delete cluster") n=$(arg --name "$@"); grep -vx "$n" "$FAKE_STATE/clusters" >"$FAKE_STATE/clusters.new"; mv "$FAKE_STATE/clusters.new" "$FAKE_STATE/clusters" ;;
*) echo "fake kind: unexpected $*" >&2; exit 2 ;;
esac
`
	// fakeDocker answers info, the node containers' pids ($FAKE_STATE/pid.<node>) and the kind
	// network's subnets ($FAKE_DOCKER_NET and an IPv6 one).
	fakeDocker = `
echo "docker $*" >>"$FAKE_STATE/calls"
case $1 in
info) exit 0 ;;
inspect) cat "$FAKE_STATE/pid.${!#}" ;;
network) echo "$FAKE_DOCKER_NET fc00:f853:ccd:e793::/64 " ;;
*) echo "fake docker: unexpected $*" >&2; exit 2 ;;
esac
`
	// fakeHelm installs by touching $FAKE_STATE/release, and checks the token file it is given.
	fakeHelm = `
echo "helm $*" >>"$FAKE_STATE/calls"
case $1 in
status) [ -f "$FAKE_STATE/release" ] ;;
upgrade)
	for a in "$@"; do case $a in cloud.credentials.token=*) [ -s "${a#*=}" ] || { echo "no token file ${a#*=}" >&2; exit 1; } ;; esac; done
	touch "$FAKE_STATE/release" ;;
uninstall) rm -f "$FAKE_STATE/release" ;;
*) echo "fake helm: unexpected $*" >&2; exit 2 ;;
esac
`
	// fakeKubectl answers the queries of up.sh and e2e.sh with pods in the subnet.
	fakeKubectl = `
echo "kubectl $*" >>"$FAKE_STATE/calls"
case "$*" in
*"get daemonset"*) echo daemonset.apps/flatnet-ipamd ;;
*"get pods -l k8s-app=kube-dns"*) echo "10.0.1.50 10.0.1.51" ;;
*"get nodes"*) printf '%s\n' flatnet-worker flatnet-worker2 ;;
*"get pod p1"*) echo 10.0.1.60 ;;
*"create namespace"*) echo "kind: Namespace" ;;
*"apply -f -"*) cat >/dev/null ;;
esac
exit 0
`
	// fakeGo builds fakecloud by copying the one the test built, and says the machine's arch.
	fakeGo = `
echo "go $*" >>"$FAKE_STATE/calls"
case $1 in
build) mkdir -p bin && cp "$FAKECLOUD_BUILT" bin/fakecloud ;;
env) echo amd64 ;;
*) echo "fake go: unexpected $*" >&2; exit 2 ;;
esac
`
	// fakeMake writes the two image tarballs make images writes.
	fakeMake = `
echo "make $*" >>"$FAKE_STATE/calls"
[ "$1" = images ] || { echo "fake make: unexpected $*" >&2; exit 2; }
mkdir -p bin/images
v=$(cat VERSION)
touch "bin/images/flatnet-ipamd-$v.tar" "bin/images/flatnet-lbcontroller-$v.tar"
`
)

// tools are the real commands the scripts use besides the fakes: the sandbox's PATH holds them
// and nothing else, so a machine's own kind, docker or helm never takes part.
var tools = []string{"bash", "env", "dirname", "cat", "tr", "id", "sed", "head", "od", "sort", "seq", "sleep", "tail",
	"awk", "chmod", "mkdir", "rm", "mv", "cp", "touch", "nohup", "grep", "nsenter", "nft", "make"}

type sandbox struct {
	t                   *testing.T
	root, state, prefix string
	listen              string
	env                 []string
}

// newSandbox lays out a repository with hack/kind and VERSION, the fakes and the tools; with
// fakes false, PATH has the tools alone (no kind, no docker).
func newSandbox(t *testing.T, fakes bool) *sandbox {
	t.Helper()
	s := &sandbox{t: t, root: t.TempDir(), state: t.TempDir()}
	must(t, os.MkdirAll(filepath.Join(s.root, "hack/kind"), 0o755))
	for _, f := range []string{"up.sh", "down.sh", "e2e.sh", "lib.sh", "cluster.yaml"} {
		copyFile(t, f, filepath.Join(s.root, "hack/kind", f))
	}
	copyFile(t, "../../VERSION", filepath.Join(s.root, "VERSION"))
	bin := t.TempDir()
	for _, tool := range tools {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("the kind scripts' tests need %s on PATH: %v", tool, err)
		}
		must(t, os.Symlink(p, filepath.Join(bin, tool)))
	}
	path := bin
	if fakes {
		fakeDir := t.TempDir()
		for name, body := range map[string]string{"kind": fakeKind, "docker": fakeDocker, "helm": fakeHelm,
			"kubectl": fakeKubectl, "go": fakeGo, "make": fakeMake} {
			must(t, os.WriteFile(filepath.Join(fakeDir, name), []byte("#!/usr/bin/env bash\nset -u\n"+body), 0o755))
		}
		path = fakeDir + ":" + bin
	}
	s.prefix = fmt.Sprintf("fkt%d-", os.Getpid()%100000)
	s.listen = freeLoopback(t)
	s.env = []string{"PATH=" + path, "FAKE_STATE=" + s.state, "FAKE_DOCKER_NET=172.18.0.0/16",
		"FABRIC_PREFIX=" + s.prefix, "FAKECLOUD_LISTEN=" + s.listen, "HOME=" + s.state}
	return s
}

// run runs a script of hack/kind in the sandbox with extra environment.
func (s *sandbox) run(script string, env ...string) (string, error) {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(s.root, "hack/kind", script))
	cmd.Dir = s.root
	cmd.Env = append(slices.Clone(s.env), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (s *sandbox) calls() string {
	b, _ := os.ReadFile(filepath.Join(s.state, "calls"))
	return string(b)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	must(t, err)
	fi, err := os.Stat(from)
	must(t, err)
	must(t, os.WriteFile(to, b, fi.Mode()))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func freeLoopback(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// make kind-e2e on a machine without kind and Docker says so, and nothing runs.
func TestKindE2ENeedsKindAndDocker(t *testing.T) {
	s := newSandbox(t, false)
	cmd := exec.Command("make", "-C", "../..", "kind-e2e")
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("make kind-e2e succeeded without kind and docker:\n%s", out)
	}
	for _, want := range []string{"hack/kind: kind and docker are needed", "kind is not on PATH", "docker is not on PATH"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("make kind-e2e does not say %q:\n%s", want, out)
		}
	}
	// A docker without a daemon is no better.
	fake := t.TempDir()
	must(t, os.WriteFile(filepath.Join(fake, "docker"), []byte("#!/usr/bin/env bash\nexit 1\n"), 0o755))
	for _, script := range []string{"up.sh", "e2e.sh"} {
		out, err := s.run(script, "PATH="+fake+":"+strings.TrimPrefix(s.env[0], "PATH="))
		if err == nil || !strings.Contains(out, "no Docker daemon answers") || !strings.Contains(out, "kind and docker are needed") {
			t.Errorf("%s with a docker that has no daemon: %v\n%s", script, err, out)
		}
	}
}

func TestKindUpRefusesBadSettings(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t, true)
	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{"VPC_CIDR=10.0.0.0/33"}, "VPC_CIDR=10.0.0.0/33 is not an IPv4 CIDR"},
		{[]string{"VPC_CIDR=10.0.0/16"}, "is not an IPv4 CIDR"},
		{[]string{"SUBNET_CIDR=10.1.0.0/24"}, "SUBNET_CIDR=10.1.0.0/24 is not inside VPC_CIDR=10.0.0.0/16"},
		{[]string{"SUBNET_CIDR=10.0.0.0/8"}, "is not inside VPC_CIDR"},
		{[]string{"FAKECLOUD_LISTEN=0.0.0.0:7474"}, "FAKECLOUD_LISTEN must be a loopback address"},
		{[]string{"FAKE_DOCKER_NET=10.0.128.0/17"}, "Docker's kind network 10.0.128.0/17 overlaps VPC_CIDR=10.0.0.0/16"},
	} {
		out, err := s.run("up.sh", append(c.env, "FAKECLOUD_BUILT=/nonexistent")...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("up.sh with %v: %v, want it to say %q:\n%s", c.env, err, c.want, out)
		}
	}
}

// TestKindScriptsWithFakes runs make kind-e2e's script with KEEP=1, then down.sh, against fake
// kind, docker, helm and kubectl, with a real fakecloud and three processes in network namespaces
// of their own as the kind nodes.
func TestKindScriptsWithFakes(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t, true)
	built := filepath.Join(t.TempDir(), "fakecloud")
	build := exec.Command("go", "build", "-o", built, "../../cmd/fakecloud")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build fakecloud: %v\n%s", err, out)
	}
	nodes := map[string]*node{}
	for _, name := range []string{"flatnet-control-plane", "flatnet-worker", "flatnet-worker2"} {
		nodes[name] = startNode(t)
		must(t, os.WriteFile(filepath.Join(s.state, "pid."+name), fmt.Appendf(nil, "%d\n", nodes[name].pid()), 0o644))
	}
	stateDir := filepath.Join(s.root, "bin/kind/flatnet")
	t.Cleanup(func() { stopFakecloud(stateDir) })
	t.Cleanup(func() {
		_ = exec.Command(filepath.Join(s.root, "bin/fakecloud"), "fabric", "down", "--prefix", s.prefix).Run()
	})

	out, err := s.run("e2e.sh", "KEEP=1", "FAKECLOUD_BUILT="+built)
	t.Logf("e2e.sh:\n%s", out)
	if err != nil || !strings.Contains(out, "kind e2e passed") {
		t.Fatalf("e2e.sh: %v", err)
	}
	calls := s.calls()
	for _, want := range []string{
		"make images PLATFORMS=linux/amd64",
		"kind create cluster --name flatnet --config bin/kind/flatnet/cluster.yaml --kubeconfig bin/kind/flatnet/kubeconfig",
		"kind load image-archive --name flatnet bin/images/flatnet-ipamd-",
		"kind load image-archive --name flatnet bin/images/flatnet-lbcontroller-",
		"helm upgrade --install flatnet charts/flatnet --namespace flatnet-system --create-namespace --set cluster.name=flatnet --set cloud.subnetID=subnet-",
		"--set cloud.fakecloud.endpoint=http://169.254.169.254:7474 --set-file cloud.credentials.token=bin/kind/flatnet/lb-token",
		"--set image.registry=ghcr.io/flatnet --set image.tag=",
		"kubectl -n flatnet-system rollout status daemonset.apps/flatnet-ipamd",
		"kubectl -n flatnet-e2e exec p0 -- ping -c 3 -W 2 10.0.1.60",
	} {
		if !strings.Contains(calls, want) {
			t.Errorf("no call %q in:\n%s", want, calls)
		}
	}
	config, err := os.ReadFile(filepath.Join(s.state, "cluster.yaml"))
	if err != nil || !strings.Contains(string(config), "\n  podSubnet: 10.0.0.0/16\n") || !strings.Contains(string(config), "disableDefaultCNI: true") {
		t.Errorf("the cluster's config: %v\n%s", err, config)
	}
	if strings.Contains(calls, "kind delete") || strings.Contains(calls, "helm uninstall") {
		t.Errorf("KEEP=1 removed something:\n%s", calls)
	}
	for name, n := range nodes {
		vpc0, err := n.h.LinkByName("vpc0")
		if err != nil {
			t.Errorf("%s has no vpc0 after up.sh: %v", name, err)
			continue
		}
		addrs, _ := n.h.AddrList(vpc0, unix.AF_INET)
		if len(addrs) != 1 || !strings.HasPrefix(addrs[0].IPNet.String(), "10.0.1.") {
			t.Errorf("%s: vpc0 addresses %v, want one in 10.0.1.0/24", name, addrs)
		}
		table, err := exec.Command("nsenter", "--net="+n.netns, "nft", "list", "table", "ip", "flatnet_kind").CombinedOutput()
		if err != nil || !strings.Contains(string(table), `oifname "eth0" ip saddr 10.0.0.0/16 ip daddr != 10.0.0.0/16 masquerade`) {
			t.Errorf("%s: the masquerade table: %v\n%s", name, err, table)
		}
	}
	for _, f := range []string{"env", "admin-token", "lb-token", "kubeconfig", "fakecloud.log"} {
		if _, err := os.Stat(filepath.Join(stateDir, f)); err != nil {
			t.Errorf("up.sh left no %s: %v", f, err)
		}
	}

	if out, err := s.run("up.sh", "FAKECLOUD_BUILT="+built); err == nil || !strings.Contains(out, "a kind cluster named flatnet exists already") {
		t.Errorf("up.sh over a running cluster: %v\n%s", err, out)
	}

	out, err = s.run("down.sh")
	t.Logf("down.sh:\n%s", out)
	if err != nil {
		t.Fatalf("down.sh: %v", err)
	}
	calls = s.calls()
	for _, want := range []string{"helm uninstall flatnet --namespace flatnet-system", "kind delete cluster --name flatnet"} {
		if !strings.Contains(calls, want) {
			t.Errorf("down.sh made no call %q", want)
		}
	}
	if _, err := os.Stat(stateDir); err == nil {
		t.Errorf("down.sh left %s", stateDir)
	}
	for name, n := range nodes {
		if got := linkNames(t, n.h); !slices.Equal(got, []string{"lo"}) {
			t.Errorf("%s after down.sh: links %v, want lo alone", name, got)
		}
		if n.cmd.Process.Signal(syscall.Signal(0)) != nil {
			t.Errorf("%s's process is gone after down.sh", name)
		}
	}
	if left, _ := filepath.Glob("/run/netns/" + s.prefix + "*"); len(left) > 0 {
		t.Errorf("namespaces left after down.sh: %v", left)
	}
}

// node stands in for a kind node container: a process in a network namespace of its own.
type node struct {
	cmd   *exec.Cmd
	netns string
	h     *netlink.Handle
}

func (n *node) pid() int { return n.cmd.Process.Pid }

func startNode(t *testing.T) *node {
	t.Helper()
	cmd := exec.Command("sleep", "infinity")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	must(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	n := &node{cmd: cmd, netns: fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)}
	nsh, err := netns.GetFromPath(n.netns)
	must(t, err)
	defer nsh.Close()
	n.h, err = netlink.NewHandleAt(nsh, unix.NETLINK_ROUTE)
	must(t, err)
	t.Cleanup(n.h.Close)
	return n
}

func linkNames(t *testing.T, h *netlink.Handle) []string {
	t.Helper()
	links, err := h.LinkList()
	must(t, err)
	var out []string
	for _, l := range links {
		out = append(out, l.Attrs().Name)
	}
	slices.Sort(out)
	return out
}

// stopFakecloud stops a fakecloud up.sh left running (the test failed before down.sh).
func stopFakecloud(state string) {
	b, err := os.ReadFile(filepath.Join(state, "fakecloud.pid"))
	if err != nil {
		return
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil || pid <= 0 {
		return
	}
	if syscall.Kill(pid, syscall.SIGTERM) != nil {
		return
	}
	for range 150 {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the kind scripts' tests run fakecloud's fabric, which needs network namespaces: run them as root (make test does)")
	}
}
