package docrefs

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

var (
	// mdLink is a Markdown link's target: [text](target).
	mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	// mdName is a mention of a Markdown file by name or path, not part of a URL, with the anchor
	// that may follow it (docs/architecture.md#pod-datapath).
	mdName = regexp.MustCompile(`(^|[^\w./:-])([\w./-]*[\w-]+\.md)\b(#[\w-]+)?`)
	// fence opens or closes a fenced code block, whose lines are no headings.
	fence = regexp.MustCompile("^\\s*(```|~~~)")
	// heading is an ATX heading.
	heading = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
)

// scanned says whether a file's references are checked: code, docs, scripts and configs.
func scanned(path string) bool {
	switch filepath.Ext(path) {
	case ".go", ".md", ".yml", ".yaml", ".sh", ".tpl", ".txt":
		return true
	}
	base := filepath.Base(path)
	return base == "Makefile" || base == "run" || strings.HasPrefix(base, ".golangci")
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
				return dir
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no repository root (go.mod beside .git) above the test's directory")
		}
		dir = parent
	}
}

// repoFiles lists the repository's files, relative to root: what git tracks plus new files it
// does not ignore (build output, caches and editors' files are not the repository's). Without
// git it walks the tree, leaving out .git and ./bin.
func repoFiles(t *testing.T, root string) []string {
	t.Helper()
	cmd := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	if out, err := cmd.Output(); err == nil {
		var files []string
		for _, f := range strings.Split(string(out), "\x00") {
			// A tracked file deleted in the work tree is not there to be followed.
			if _, err := os.Stat(filepath.Join(root, f)); f != "" && err == nil {
				files = append(files, filepath.FromSlash(f))
			}
		}
		return files
	}
	t.Log("git ls-files failed: walking the tree instead")
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (d.Name() == ".git" || p == filepath.Join(root, "bin")) {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		files = append(files, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestReferencesResolve: every Markdown link to a local file, every mention of a *.md file and
// every anchor either names (#section) resolves within the repository: a reader following it
// finds it, whoever cloned the repo. URLs are not followed.
func TestReferencesResolve(t *testing.T) {
	root := repoRoot(t)
	files := repoFiles(t, root)
	names := map[string]bool{} // base names of the repository's files
	for _, f := range files {
		names[filepath.Base(f)] = true
	}
	anchors := anchorIndex{}
	// exists: p is a file or directory inside the repository (one next to the clone does not
	// count: it is not there for whoever clones the repository elsewhere).
	exists := func(p string) bool {
		if r, err := filepath.Rel(root, p); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			return false
		}
		_, err := os.Stat(p)
		return err == nil
	}
	checked := 0
	for _, rel := range files {
		if !scanned(rel) {
			continue
		}
		f := filepath.Join(root, rel)
		lines, err := readLines(f)
		if err != nil {
			t.Fatal(err)
		}
		isMD := filepath.Ext(f) == ".md"
		for i, line := range lines {
			n := i + 1
			if isMD {
				for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
					target, anchor, _ := strings.Cut(m[1], "#")
					if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
						continue
					}
					checked++
					path := f // a bare #anchor is one of this file's own
					if target != "" {
						path = filepath.Join(filepath.Dir(f), target)
					}
					if !exists(path) {
						t.Errorf("%s:%d links to %s, which is not in the repository", rel, n, m[1])
						continue
					}
					if anchor != "" && filepath.Ext(path) == ".md" && !anchors.has(t, path, anchor) {
						t.Errorf("%s:%d links to %s, but %s has no heading #%s", rel, n, m[1], relTo(root, path), anchor)
					}
				}
			}
			text := line
			if isMD {
				text = mdLink.ReplaceAllString(line, "]()") // link targets are checked above
			}
			if filepath.Ext(f) == ".go" {
				// In Go only comments and strings name files, not code (a field called md).
				i := strings.Index(line, "//")
				j := strings.Index(line, `"`)
				switch {
				case i >= 0 && (j < 0 || i < j):
					text = line[i:]
				case j >= 0:
					text = line[j:]
				default:
					continue
				}
			}
			for _, m := range mdName.FindAllStringSubmatch(text, -1) {
				name, anchor := m[2], strings.TrimPrefix(m[3], "#")
				checked++
				var path string
				switch {
				case strings.Contains(name, "/"):
					for _, p := range []string{filepath.Join(root, name), filepath.Join(filepath.Dir(f), name)} {
						if exists(p) {
							path = p
							break
						}
					}
				case names[name]:
					path = uniqueByName(files, root, name)
				}
				if path == "" && !names[name] {
					t.Errorf("%s:%d names %s, which is not in the repository", rel, n, name)
					continue
				}
				if anchor != "" && path != "" && !anchors.has(t, path, anchor) {
					t.Errorf("%s:%d names %s#%s, but %s has no heading #%s", rel, n, name, anchor, relTo(root, path), anchor)
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d references checked: the scan missed the docs", checked)
	}
}

// uniqueByName returns the one file of the repository called name, or "" when several are.
func uniqueByName(files []string, root, name string) string {
	found := ""
	for _, f := range files {
		if filepath.Base(f) == name {
			if found != "" {
				return ""
			}
			found = filepath.Join(root, f)
		}
	}
	return found
}

func relTo(root, path string) string {
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return path
	}
	return rel
}

func readLines(path string) ([]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var lines []string
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return lines, nil
}

// anchorIndex holds the anchors of each Markdown file, read once.
type anchorIndex map[string]map[string]bool

func (a anchorIndex) has(t *testing.T, path, anchor string) bool {
	t.Helper()
	set, ok := a[path]
	if !ok {
		lines, err := readLines(path)
		if err != nil {
			t.Fatal(err)
		}
		set = anchorsOf(lines)
		a[path] = set
	}
	return set[anchor]
}

// anchorsOf returns the anchors GitHub makes of a Markdown file's headings (code blocks left
// out): the heading in lower case, without punctuation but hyphens and underscores, spaces as
// hyphens, and -1, -2, ... after repeats.
func anchorsOf(lines []string) map[string]bool {
	set := map[string]bool{}
	seen := map[string]int{}
	inCode := false
	for _, line := range lines {
		if fence.MatchString(line) {
			inCode = !inCode
			continue
		}
		m := heading.FindStringSubmatch(line)
		if inCode || m == nil {
			continue
		}
		s := slug(m[1])
		if k := seen[s]; k > 0 {
			set[fmt.Sprintf("%s-%d", s, k)] = true
		} else {
			set[s] = true
		}
		seen[s]++
	}
	return set
}

func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// TestAnchorsOf: anchors are made as GitHub makes them.
func TestAnchorsOf(t *testing.T) {
	got := anchorsOf([]string{
		"# Architecture",
		"### `fakecloud/api` — the wire contract",
		"## Pod datapath",
		"```sh",
		"# not a heading",
		"```",
		"## Load balancer data plane (`fakecloud/fabric/lb*.go`)",
		"## Tests",
		"## Tests",
	})
	for _, want := range []string{"architecture", "fakecloudapi--the-wire-contract", "pod-datapath",
		"load-balancer-data-plane-fakecloudfabriclbgo", "tests", "tests-1"} {
		if !got[want] {
			t.Errorf("no anchor %q in %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Error("a comment in a code block made an anchor")
	}
}
