package docrefs

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	// mdLink is a Markdown link's target: [text](target).
	mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	// mdName is a mention of a Markdown file by name or path, not part of a URL.
	mdName = regexp.MustCompile(`(^|[^\w./:-])([\w./-]*[\w-]+\.md)\b`)
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

// TestReferencesResolve: every Markdown link to a local file, and every mention of a *.md
// file, names a file of the repository: a reader following it finds it, whoever cloned the repo.
func TestReferencesResolve(t *testing.T) {
	root := repoRoot(t)
	var files []string
	names := map[string]bool{} // base names of the repository's files
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "bin", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		names[d.Name()] = true
		if scanned(p) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	checked := 0
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			if filepath.Ext(f) == ".md" {
				for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
					target, _, _ := strings.Cut(m[1], "#")
					if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
						continue
					}
					checked++
					if !exists(filepath.Join(filepath.Dir(f), target)) {
						t.Errorf("%s:%d links to %s, which is not in the repository", rel, n, m[1])
					}
				}
			}
			text := line
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
				name := m[2]
				checked++
				switch {
				case strings.Contains(name, "/"):
					if !exists(filepath.Join(root, name)) && !exists(filepath.Join(filepath.Dir(f), name)) {
						t.Errorf("%s:%d names %s, which is not in the repository", rel, n, name)
					}
				case !names[name]:
					t.Errorf("%s:%d names %s, which is not in the repository", rel, n, name)
				}
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		fh.Close()
	}
	if checked < 20 {
		t.Errorf("only %d references checked: the scan missed the docs", checked)
	}
}
