package prereqs

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// script is the prerequisite step under test, from this package's directory.
const script = "../prereqs.sh"

// sandboxGoVersion is the go line of the sandbox's go.mod, so that the Go checks do not move with
// the real one.
const sandboxGoVersion = "1.26.8"

// entry is one line of the script's packages=( ... ) or tools=( ... ) list: a Debian package and
// the command it provides, or a tool and its version.
type entry struct{ name, arg string }

// listOf reads the script's list named name: the tests take the packages and tools from the one
// list there instead of repeating it.
func listOf(t *testing.T, name string) []entry {
	t.Helper()
	src, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?ms)^` + name + `=\(\n(.*?)^\)`).FindSubmatch(src)
	if block == nil {
		t.Fatalf("%s has no %s=( ... ) list", script, name)
	}
	var list []entry
	for _, m := range regexp.MustCompile(`(?m)^\s*"(\S+) (\S+)"`).FindAllSubmatch(block[1], -1) {
		list = append(list, entry{string(m[1]), string(m[2])})
	}
	if len(list) == 0 {
		t.Fatalf("%s: the %s list is empty", script, name)
	}
	return list
}

func names(list []entry) []string {
	var out []string
	for _, e := range list {
		out = append(out, e.name)
	}
	return out
}

// The fakes are bash scripts using builtins only, since the script runs with PATH holding nothing
// but them. Each records its call in $FAKE_STATE/calls.
const (
	// fakeDpkgQuery answers `dpkg-query -W -f=... PACKAGE...` from $FAKE_STATE/installed, one
	// "package [status]" a line (status ii when left out), as the real one formats
	// '${Package} ${db:Status-Abbrev}'.
	fakeDpkgQuery = `
echo "dpkg-query $*" >>"$FAKE_STATE/calls"
declare -A have=()
if [ -f "$FAKE_STATE/installed" ]; then
	while read -r p st; do [ -n "$p" ] && have[$p]=${st:-ii}; done <"$FAKE_STATE/installed"
fi
rc=0
for a in "$@"; do
	case $a in -*) continue ;; esac
	if [ -n "${have[$a]:-}" ]; then echo "$a ${have[$a]} "; else echo "dpkg-query: no packages found matching $a" >&2; rc=1; fi
done
exit $rc
`
	// fakeAptGet records its call; `install` adds its packages to $FAKE_STATE/installed, so the
	// dpkg-query fake says they are installed afterwards.
	fakeAptGet = `
echo "apt-get $*" >>"$FAKE_STATE/calls"
install= skip=
for a in "$@"; do
	if [ -n "$skip" ]; then skip=; continue; fi
	case $a in
	-o) skip=1 ;;
	-*) ;;
	install) install=1 ;;
	*) [ -z "$install" ] || echo "$a" >>"$FAKE_STATE/installed" ;;
	esac
done
`
	fakeID = `
[ "$*" = -u ] || { echo "fake id: only -u" >&2; exit 2; }
echo "$FAKE_UID"
`
	fakeGo = `
if [ "$*" = "env GOVERSION" ]; then echo "$FAKE_GOVERSION"; exit 0; fi
echo "fake go: $*" >&2
exit 2
`
	// fakeInstaller stands for hack/install-NAME.sh [--check] VERSION DIR: a tool is installed
	// when DIR/NAME holds VERSION.
	fakeInstaller = `
check=
if [ "$1" = --check ]; then check=1; shift; fi
name=${0##*/install-}; name=${name%.sh}
version=$1 dest=$2
[ -f "$dest/$name" ] && [ "$(<"$dest/$name")" = "$version" ] && exit 0
[ -z "$check" ] || exit 1
echo "install $name $version" >>"$FAKE_STATE/calls"
echo "$version" >"$dest/$name"
`
)

// sandbox is a copy of the script in a tree of its own (go.mod, hack/, bin/) with fakes for every
// program it runs and the fakes' state.
type sandbox struct {
	t                  *testing.T
	bash               string
	root, fakes, state string
	uid, goVersion     string
	env                []string
}

// newSandbox makes a sandbox; without names fakes to leave out ("apt-get", "dpkg-query", "go").
func newSandbox(t *testing.T, without ...string) *sandbox {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash on PATH")
	}
	root := t.TempDir()
	s := &sandbox{
		t: t, bash: bash, root: root,
		fakes: filepath.Join(root, "fakes"), state: filepath.Join(root, "state"),
		uid: "0", goVersion: "go" + sandboxGoVersion,
	}
	for _, d := range []string{"hack", "bin", "fakes", "state"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	s.write(filepath.Join(root, "hack", "prereqs.sh"), string(src))
	s.write(filepath.Join(root, "go.mod"), "module example.com/sandbox\n\ngo "+sandboxGoVersion+"\n")
	for _, tool := range listOf(t, "tools") {
		s.writeScript(filepath.Join(root, "hack", "install-"+tool.name+".sh"), fakeInstaller)
	}
	fakes := map[string]string{"id": fakeID, "go": fakeGo, "dpkg-query": fakeDpkgQuery, "apt-get": fakeAptGet}
	for name, body := range fakes {
		if !slices.Contains(without, name) {
			s.writeScript(filepath.Join(s.fakes, name), body)
		}
	}
	return s
}

func (s *sandbox) write(path, content string) {
	s.t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sandbox) writeScript(path, body string) {
	s.write(path, "#!"+s.bash+"\n"+strings.TrimPrefix(body, "\n"))
}

// install marks packages installed for the dpkg-query fake; "name rc" gives another status.
func (s *sandbox) install(pkgs ...string) {
	s.t.Helper()
	f, err := os.OpenFile(filepath.Join(s.state, "installed"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer f.Close()
	for _, p := range pkgs {
		if _, err := f.WriteString(p + "\n"); err != nil {
			s.t.Fatal(err)
		}
	}
}

// commands puts a fake command for each of cmds on PATH, for the probes without dpkg-query.
func (s *sandbox) commands(cmds ...string) {
	for _, c := range cmds {
		s.writeScript(filepath.Join(s.fakes, c), "exit 0\n")
	}
}

// calls returns what the fakes were asked, one call a line.
func (s *sandbox) calls() []string {
	s.t.Helper()
	raw, err := os.ReadFile(filepath.Join(s.state, "calls"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		s.t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
}

// run runs the sandbox's script with args; PATH holds the fakes alone.
func (s *sandbox) run(args ...string) (string, error) {
	s.t.Helper()
	cmd := exec.Command(s.bash, append([]string{filepath.Join(s.root, "hack", "prereqs.sh")}, args...)...)
	cmd.Env = append([]string{
		"PATH=" + s.fakes, "HOME=" + s.root, "LANG=C", "FLATNET_PREREQS_SBIN=",
		"FAKE_STATE=" + s.state, "FAKE_UID=" + s.uid, "FAKE_GOVERSION=" + s.goVersion,
	}, s.env...)
	out, err := cmd.CombinedOutput()
	s.t.Logf("prereqs.sh %s:\n%s", strings.Join(args, " "), out)
	return string(out), err
}

func mustContain(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
}

func mustNotContain(t *testing.T, out string, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if strings.Contains(out, w) {
			t.Errorf("output has %q", w)
		}
	}
}

func matching(calls []string, prefix string) []string {
	var out []string
	for _, c := range calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// exitCode is the script's exit status (0 for a nil error).
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	default:
		t.Fatalf("run the script: %v", err)
		return -1
	}
}

// The acceptance: the first run on a machine that lacks some packages and the linter
// installs exactly those (apt-get update, then one apt-get install); the second installs nothing,
// runs no apt-get at all and says everything is present.
func TestSecondRunInstallsNothing(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	pkgs := names(listOf(t, "packages"))
	absent := []string{"nftables", "iputils-ping"}
	for _, p := range pkgs {
		if !slices.Contains(absent, p) {
			s.install(p)
		}
	}
	// Removed with its configuration left: not installed.
	s.install("iputils-ping rc")
	tools := names(listOf(t, "tools"))

	out, err := s.run()
	if code := exitCode(t, err); code != 0 {
		t.Fatalf("first run: exit %d", code)
	}
	mustContain(t, out,
		"prereqs: installing: nftables iputils-ping\n",
		"prereqs: installing: "+strings.Join(tools, " ")+" (into ",
		"prereqs: installed: nftables iputils-ping "+strings.Join(tools, " ")+"\n")
	first := s.calls()
	apt := matching(first, "apt-get ")
	if len(apt) != 2 || !strings.Contains(apt[0], " update") ||
		!strings.HasSuffix(apt[1], " install -y -qq --no-install-recommends nftables iputils-ping") {
		t.Errorf("first run: want apt-get update, then apt-get install of nftables iputils-ping; got %q", apt)
	}
	if got := matching(first, "install "); len(got) != len(tools) {
		t.Errorf("first run: want each tool installed once; got %q", got)
	}

	out, err = s.run()
	if code := exitCode(t, err); code != 0 {
		t.Fatalf("second run: exit %d", code)
	}
	mustContain(t, out, "prereqs: Debian packages: all present\n", "prereqs: tools: all present (",
		"nothing to install\n")
	mustNotContain(t, out, "installing", "installed:")
	second := s.calls()[len(first):]
	if got := matching(second, "apt-get "); len(got) > 0 {
		t.Errorf("second run called apt-get: %q", got)
	}
	if got := matching(second, "install "); len(got) > 0 {
		t.Errorf("second run installed tools: %q", got)
	}
	if got := matching(second, "dpkg-query "); len(got) != 1 {
		t.Errorf("second run: want one dpkg-query for all packages, got %q", got)
	}
}

// --system leaves the tools alone and --tools the packages.
func TestModes(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	out, err := s.run("--system")
	if code := exitCode(t, err); code != 0 {
		t.Fatalf("--system: exit %d", code)
	}
	mustContain(t, out, "installing: "+strings.Join(names(listOf(t, "packages")), " ")+"\n")
	if got := matching(s.calls(), "install "); len(got) > 0 {
		t.Errorf("--system installed tools: %q", got)
	}
	n := len(s.calls())
	out, err = s.run("--tools")
	if code := exitCode(t, err); code != 0 {
		t.Fatalf("--tools: exit %d", code)
	}
	mustContain(t, out, "installing: "+strings.Join(names(listOf(t, "tools")), " "))
	later := s.calls()[n:]
	if got := append(matching(later, "apt-get "), matching(later, "dpkg-query ")...); len(got) > 0 {
		t.Errorf("--tools looked at packages: %q", got)
	}
	if _, err := s.run("--bogus"); exitCode(t, err) == 0 {
		t.Error("an unknown argument was accepted")
	}
}

// Without root, a missing package is a refusal that names it and says how to install it, before
// any apt-get; with everything present, no root is needed at all.
func TestNotRoot(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.uid = "1000"
	pkgs := names(listOf(t, "packages"))
	s.install(slices.DeleteFunc(slices.Clone(pkgs), func(p string) bool { return p == "nftables" })...)
	out, err := s.run("--system")
	if code := exitCode(t, err); code != 1 {
		t.Fatalf("not root with nftables missing: exit %d, want 1", code)
	}
	mustContain(t, out, "missing Debian packages: nftables; installing them needs root",
		"apt-get install --no-install-recommends nftables")
	if got := matching(s.calls(), "apt-get "); len(got) > 0 {
		t.Errorf("not root: apt-get was called: %q", got)
	}

	s.install("nftables")
	out, err = s.run("--system")
	if code := exitCode(t, err); code != 0 {
		t.Fatalf("not root, everything present: exit %d, want 0", code)
	}
	mustContain(t, out, "all present")
	mustNotContain(t, out, "root")
}

// No apt-get (and no dpkg-query): the commands decide what is there, and what is not is named
// with its package, to install by hand.
func TestNoAptGet(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, "apt-get", "dpkg-query")
	pkgs := listOf(t, "packages")
	var present []string
	for _, p := range pkgs {
		if p.name != "conntrack" && p.name != "iputils-ping" {
			present = append(present, p.arg)
		}
	}
	s.commands(present...)
	out, err := s.run("--system")
	if code := exitCode(t, err); code != 1 {
		t.Fatalf("no apt-get, packages missing: exit %d, want 1", code)
	}
	mustContain(t, out, "missing: conntrack iputils-ping, and there is no apt-get", "by hand",
		"  conntrack (conntrack)\n", "  iputils-ping (ping)\n")
	mustNotContain(t, out, "iproute2", "nftables")

	s.commands("conntrack", "ping")
	out, err = s.run("--system")
	if code := exitCode(t, err); code != 0 {
		t.Fatalf("no apt-get, every command there: exit %d, want 0", code)
	}
	mustContain(t, out, "all present")
}

// dpkg-query without apt-get: the same refusal.
func TestNoAptGetWithDpkg(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, "apt-get")
	out, err := s.run("--system")
	if code := exitCode(t, err); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	mustContain(t, out, "there is no apt-get", "  nftables (nft)\n")
}

// Go: missing, older than go.mod, or newer in every form Go releases take.
func TestGoVersion(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, "go")
	out, err := s.run("--system")
	if code := exitCode(t, err); code != 1 {
		t.Fatalf("no go: exit %d, want 1", code)
	}
	mustContain(t, out, "Go is not on PATH")

	for _, tc := range []struct {
		version string
		ok      bool
	}{
		{"go" + sandboxGoVersion, true},
		{"go1.26.10", true},
		{"go1.27rc1", true},
		{"go1.27", true},
		{"go1.27.0", true},
		{"go2.0.0", true},
		{"go1.26.7", false},
		{"go1.26", false},
		{"go1.26rc2", false},
		{"go1.9", false},
		{"go1.25.12", false},
	} {
		t.Run(tc.version, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			s.goVersion = tc.version
			s.install(names(listOf(t, "packages"))...)
			out, err := s.run("--system")
			code := exitCode(t, err)
			switch {
			case tc.ok && code != 0:
				t.Errorf("%s refused against go %s (exit %d)", tc.version, sandboxGoVersion, code)
			case !tc.ok && code != 1:
				t.Errorf("%s accepted against go %s (exit %d)", tc.version, sandboxGoVersion, code)
			case !tc.ok:
				mustContain(t, out, "is "+tc.version+", older than the go "+sandboxGoVersion)
				if got := s.calls(); len(got) > 0 {
					t.Errorf("went on after refusing Go: %q", got)
				}
			}
		})
	}
}

// The real machine, which make test's prerequisite step has just completed: the script finds
// everything present, says so, and runs no apt-get (one in front of the real one on PATH fails
// the run if it is called). The tools are left out: a machine without them would install them
// here, with go install.
func TestRealMachineAllPresent(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("not a Debian machine: no dpkg-query")
	}
	state := t.TempDir()
	fakes := t.TempDir()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash on PATH")
	}
	apt := "#!" + bash + "\necho \"apt-get $*\" >>\"$FAKE_STATE/calls\"\necho 'fake apt-get: the test forbids installing' >&2\nexit 100\n"
	if err := os.WriteFile(filepath.Join(fakes, "apt-get"), []byte(apt), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bash, script, "--system")
	cmd.Env = append(os.Environ(), "PATH="+fakes+string(os.PathListSeparator)+os.Getenv("PATH"), "FAKE_STATE="+state)
	out, err := cmd.CombinedOutput()
	t.Logf("prereqs.sh --system:\n%s", out)
	if err != nil {
		t.Fatalf("prereqs.sh --system on this machine: %v (run make prereqs as root first)", err)
	}
	mustContain(t, string(out), "prereqs: Debian packages: all present\n", "nothing to install\n")
	mustNotContain(t, string(out), "installing")
	if _, err := os.Stat(filepath.Join(state, "calls")); err == nil {
		t.Error("apt-get was called")
	}
}
