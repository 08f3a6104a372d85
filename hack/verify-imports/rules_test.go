package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const mod = "example.com/m"

func TestCheck(t *testing.T) {
	std := func(path string, imports ...string) Package {
		return Package{ImportPath: path, Standard: true, Imports: imports}
	}
	pkg := func(path string, imports ...string) Package {
		return Package{ImportPath: path, Imports: imports}
	}
	base := []Package{
		std("fmt"), std("net"),
		pkg(mod + "/fakecloud/api"),
		pkg(mod+"/fakecloud/client", mod+"/fakecloud/api"),
		pkg(mod+"/fakecloud/server", mod+"/fakecloud/api"),
		pkg(mod + "/fakecloud/internal/state"),
		pkg(mod + "/fakecloud/fabric"),
		pkg(mod + "/ipamd/wire"),
		pkg("github.com/vishvananda/netlink", "github.com/vishvananda/netns"),
		pkg("github.com/vishvananda/netns"),
		pkg("github.com/prometheus/client_golang/prometheus"),
		pkg("github.com/hashicorp/go-memdb"),
		pkg("k8s.io/apimachinery/pkg/types"),
		pkg("example.org/innocent", "k8s.io/apimachinery/pkg/types"),
	}
	tests := []struct {
		name  string
		extra []Package
		want  []string // "pkg -> import" of every violation, in order
	}{
		{
			name: "clean tree",
			extra: []Package{
				pkg(mod+"/cmd/fakecloud", mod+"/fakecloud/server", "fmt"),
				pkg(mod+"/cmd/flatnet-cni", mod+"/cni"),
				pkg(mod+"/cni", mod+"/ipamd/wire", "github.com/vishvananda/netlink", "net", "C"),
				pkg(mod+"/ipamd", mod+"/providers", "github.com/prometheus/client_golang/prometheus"),
				pkg(mod+"/lbcontroller", mod+"/providers", "k8s.io/apimachinery/pkg/types"),
				pkg(mod+"/lbcontroller/deploy", mod+"/providers", mod+"/lbcontroller/model"),
				pkg(mod+"/lab", mod+"/fakecloud/client"),
				pkg(mod+"/providers", "fmt"),
				pkg(mod+"/providers/fakecloud", mod+"/providers", mod+"/fakecloud/client", mod+"/fakecloud/api"),
				pkg(mod+"/providers/providertest", mod+"/providers", mod+"/fakecloud/server/servertest"),
				pkg(mod+"/providers/all", mod+"/providers", mod+"/providers/fakecloud"),
				pkg(mod+"/cmd/flatnet-ipamd", mod+"/ipamd", mod+"/providers/all"),
			},
		},
		{
			name:  "anything importing cmd",
			extra: []Package{pkg(mod + "/cmd/tool"), pkg(mod+"/ipamd", mod+"/cmd/tool")},
			want:  []string{mod + "/ipamd -> " + mod + "/cmd/tool"},
		},
		{
			name:  "cmd importing hack",
			extra: []Package{pkg(mod + "/hack/x"), pkg(mod+"/cmd/tool", mod+"/hack/x")},
			want:  []string{mod + "/cmd/tool -> " + mod + "/hack/x"},
		},
		{
			name:  "cni importing ipamd proper",
			extra: []Package{pkg(mod + "/ipamd"), pkg(mod+"/cni", mod+"/ipamd")},
			want:  []string{mod + "/cni -> " + mod + "/ipamd"},
		},
		{
			name:  "cni importing prometheus directly",
			extra: []Package{pkg(mod+"/cni", "github.com/prometheus/client_golang/prometheus")},
			want: []string{
				mod + "/cni -> github.com/prometheus/client_golang/prometheus",
				mod + "/cni -> github.com/prometheus/client_golang/prometheus", // also found by the graph walk
			},
		},
		{
			name: "cni binary reaching memdb through ipamd/wire",
			extra: []Package{
				pkg(mod+"/cmd/flatnet-cni", mod+"/cni"),
				pkg(mod+"/cni", mod+"/ipamd/wire"),
				pkg(mod+"/ipamd/wire", "github.com/hashicorp/go-memdb"),
			},
			want: []string{mod + "/cni -> github.com/hashicorp/go-memdb"}, // the shortest chain
		},
		{
			name: "fakecloud and ipamd using the shared leaves",
			extra: []Package{
				pkg(mod+"/internal/httpserve", "net"),
				pkg(mod+"/internal/httpserve/httpservetest", mod+"/internal/httpserve"),
				pkg(mod+"/fakecloud/cli", mod+"/internal/httpserve", mod+"/internal/privfile"),
				pkg(mod+"/ipamd", mod+"/internal/httpserve"),
			},
		},
		{
			name:  "a shared leaf importing fakecloud",
			extra: []Package{pkg(mod+"/internal/privfile", mod+"/fakecloud/api")},
			want:  []string{mod + "/internal/privfile -> " + mod + "/fakecloud/api"},
		},
		{
			name:  "ipamd importing fakecloud server",
			extra: []Package{pkg(mod+"/ipamd/pool", mod+"/fakecloud/server")},
			want:  []string{mod + "/ipamd/pool -> " + mod + "/fakecloud/server"},
		},
		{
			name:  "ipamd importing fakecloud's client",
			extra: []Package{pkg(mod+"/ipamd", mod+"/fakecloud/client")},
			want:  []string{mod + "/ipamd -> " + mod + "/fakecloud/client"},
		},
		{
			name:  "lbcontroller importing a driver",
			extra: []Package{pkg(mod + "/providers/aws"), pkg(mod+"/lbcontroller/deploy", mod+"/providers/aws")},
			want:  []string{mod + "/lbcontroller/deploy -> " + mod + "/providers/aws"},
		},
		{
			name:  "ipamd importing the driver list",
			extra: []Package{pkg(mod + "/providers/all"), pkg(mod+"/ipamd", mod+"/providers/all")},
			want:  []string{mod + "/ipamd -> " + mod + "/providers/all"},
		},
		{
			name:  "lbcontroller importing ipamd",
			extra: []Package{pkg(mod + "/ipamd/pool"), pkg(mod+"/lbcontroller", mod+"/ipamd/pool")},
			want:  []string{mod + "/lbcontroller -> " + mod + "/ipamd/pool"},
		},
		{
			name:  "a driver importing a consumer",
			extra: []Package{pkg(mod + "/lbcontroller/model"), pkg(mod+"/providers/aws", mod+"/lbcontroller/model")},
			want:  []string{mod + "/providers/aws -> " + mod + "/lbcontroller/model"},
		},
		{
			name:  "a driver importing fakecloud's state",
			extra: []Package{pkg(mod+"/providers/fakecloud", mod+"/fakecloud/internal/state")},
			want:  []string{mod + "/providers/fakecloud -> " + mod + "/fakecloud/internal/state"},
		},
		{
			name:  "the seam importing a driver",
			extra: []Package{pkg(mod + "/providers/aws"), pkg(mod+"/providers", mod+"/providers/aws")},
			want:  []string{mod + "/providers -> " + mod + "/providers/aws"},
		},
		{
			name:  "non-test code importing the contract suite",
			extra: []Package{pkg(mod + "/providers/providertest"), pkg(mod+"/lab", mod+"/providers/providertest")},
			want:  []string{mod + "/lab -> " + mod + "/providers/providertest"},
		},
		{
			name:  "lbcontroller importing fakecloud fabric",
			extra: []Package{pkg(mod+"/lbcontroller", mod+"/fakecloud/fabric")},
			want:  []string{mod + "/lbcontroller -> " + mod + "/fakecloud/fabric"},
		},
		{
			name: "product code importing anything under test/",
			extra: []Package{
				pkg(mod + "/test/lab"), pkg(mod + "/test/conformance"),
				pkg(mod+"/cmd/flatnet-lab", mod+"/test/lab"),
				pkg(mod+"/lab", mod+"/test/conformance"),
				pkg(mod+"/internal/wal", mod+"/test/lab"),
			},
			want: []string{
				mod + "/cmd/flatnet-lab -> " + mod + "/test/lab",
				mod + "/internal/wal -> " + mod + "/test/lab",
				mod + "/lab -> " + mod + "/test/conformance",
			},
		},
		{
			name: "tools and tests may import test/",
			extra: []Package{
				pkg(mod + "/test/conformance"),
				pkg(mod+"/hack/conformance", mod+"/test/conformance", mod+"/lab"),
				pkg(mod+"/test/e2e", mod+"/test/conformance"),
			},
		},
		{
			name:  "the lab importing fakecloud state",
			extra: []Package{pkg(mod+"/lab", mod+"/fakecloud/internal/state")},
			want:  []string{mod + "/lab -> " + mod + "/fakecloud/internal/state"},
		},
		{
			name:  "fakecloud importing its consumer",
			extra: []Package{pkg(mod + "/ipamd"), pkg(mod+"/fakecloud/fabric2", mod+"/ipamd")},
			want:  []string{mod + "/fakecloud/fabric2 -> " + mod + "/ipamd"},
		},
		{
			name: "ipamd reaching the clientset through a helper",
			extra: []Package{
				pkg("k8s.io/client-go/kubernetes/scheme"),
				pkg(mod+"/ipamd/kube", "k8s.io/client-go/rest", "example.org/helper"),
				pkg("k8s.io/client-go/rest"),
				pkg("example.org/helper", "k8s.io/client-go/kubernetes/scheme"),
			},
			want: []string{mod + "/ipamd/kube -> k8s.io/client-go/kubernetes/scheme"},
		},
		{
			name: "ipamd using core/v1 but reaching apps/v1",
			extra: []Package{
				pkg("k8s.io/api/core/v1", "k8s.io/apimachinery/pkg/types"),
				pkg("k8s.io/api/apps/v1", "k8s.io/api/core/v1"),
				pkg(mod+"/ipamd/kube", "k8s.io/api/core/v1", "k8s.io/api/apps/v1"),
			},
			want: []string{mod + "/ipamd/kube -> k8s.io/api/apps/v1"},
		},
		{
			name:  "fakecloud reaching kubernetes transitively",
			extra: []Package{pkg(mod+"/fakecloud/server2", "example.org/innocent")},
			want:  []string{mod + "/fakecloud/server2 -> k8s.io/apimachinery/pkg/types"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, v := range Check(mod, append(append([]Package{}, base...), tc.extra...)) {
				got = append(got, v.Pkg+" -> "+v.Import)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("violations:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestRunOnModule runs the checker on a tiny module on disk, through `go list`, once clean and
// once broken, so the glue between go list and the rules is covered too.
func TestRunOnModule(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("the go command is needed on PATH: %v", err)
	}
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module "+mod+"\n\ngo 1.22\n")
	write("fakecloud/server/server.go", "package server\n\nconst Name = \"server\"\n")
	write("cmd/fakecloud/main.go", "package main\n\nimport _ \""+mod+"/fakecloud/server\"\n\nfunc main() {}\n")
	// Tests may import anything: this must not count.
	write("ipamd/ipamd_test.go", "package ipamd\n\nimport _ \""+mod+"/fakecloud/server\"\n")
	write("ipamd/ipamd.go", "package ipamd\n")

	var out bytes.Buffer
	if err := run([]string{"-C", dir}, &out); err != nil {
		t.Fatalf("clean module: %v\n%s", err, out.String())
	}

	write("ipamd/ipamd.go", "package ipamd\n\nimport _ \""+mod+"/fakecloud/server\"\n")
	out.Reset()
	err := run([]string{"-C", dir}, &out)
	if err == nil {
		t.Fatalf("broken module passed:\n%s", out.String())
	}
	if want := mod + "/ipamd: imports " + mod + "/fakecloud/server"; !strings.Contains(out.String(), want) {
		t.Errorf("output %q does not name the violation %q", out.String(), want)
	}
}
