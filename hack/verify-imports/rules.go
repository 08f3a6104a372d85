package main

import (
	"fmt"
	"sort"
	"strings"
)

// Package is one node of the import graph: a package and its direct, non-test imports.
type Package struct {
	ImportPath string
	Standard   bool
	Imports    []string
}

// Violation is one broken rule. Chain, when set, is the import path from a checked root to the
// offending package.
type Violation struct {
	Pkg    string
	Import string
	Rule   string
	Chain  []string
}

func (v Violation) String() string {
	if len(v.Chain) > 0 {
		return fmt.Sprintf("%s: reaches %s (%s)\n\tvia %s", v.Pkg, v.Import, v.Rule, strings.Join(v.Chain, "\n\t -> "))
	}
	return fmt.Sprintf("%s: imports %s (%s)", v.Pkg, v.Import, v.Rule)
}

// The rules, by top-level folder of the module (paths relative to the module path).
var (
	// cmd holds mains only; it may wire up any component, and it chooses the cloud drivers
	// (providers/all); flatnet-lab runs the lab.
	cmdMayImport = []string{"cni", "ipamd", "lbcontroller", "nodeagent", "fakecloud", "lab", "providers"}

	// The CNI plugin stays tiny: within the module, only its own packages, ipamd's wire types and
	// the failpoints (standard library only) the soak arms inside ADD and DEL.
	cniMayImportInModule = []string{"cni", "ipamd/wire", "internal/failpoint"}
	cniMayImportExternal = []string{
		"github.com/containernetworking/cni",
		"github.com/containernetworking/plugins",
		"github.com/vishvananda/netlink",
		"github.com/vishvananda/netns",
		"golang.org/x/sys",
	}

	// The seam's consumers: they reach a cloud only through the providers package itself (never a
	// driver, which the mains and the lab choose, nor fakecloud) and never import each other.
	consumers = []string{"ipamd", "lbcontroller"}

	// What the seam and its drivers (providers/...) never import: the code that consumes them.
	providerConsumers = []string{"ipamd", "lbcontroller", "cni", "nodeagent", "lab", "test"}

	// Test code and tooling: product code (everything else: the components, cmd, lab, internal)
	// imports nothing under test/. hack/ holds the project's tools, which may drive test suites
	// (hack/conformance runs test/conformance).
	testOnly      = "test"
	toolsAndTests = []string{"test", "hack"}

	// Leaf helpers that every component may use, fakecloud and the consumers alike (server
	// timeouts, private runtime files, the write-ahead log, named network namespaces); they
	// import nothing of the module but each other.
	sharedLeaves = []string{"internal/httpserve", "internal/privfile", "internal/wal", "internal/netns"}

	// Nothing outside fakecloud (and the mains in cmd) reaches into the emulator's insides.
	fakecloudPrivate = []string{"fakecloud/server", "fakecloud/internal"}

	// The driver contract suite runs a fakecloud in process (servertest) for any driver's tests.
	providertest       = "providers/providertest"
	providertestMayUse = "fakecloud/server/servertest"

	kubernetes = []string{"k8s.io", "sigs.k8s.io"}

	// What the CNI binary's whole import graph must not contain.
	cniForbiddenAnywhere = append(append([]string{}, kubernetes...),
		"github.com/hashicorp/go-memdb",
		"github.com/prometheus",
		"github.com/sirupsen/logrus",
		"go.uber.org/zap",
		"github.com/go-logr",
		"github.com/rs/zerolog",
		"github.com/golang/glog",
	)

	// client-go's clientset and its scheme register every API group's types at start: about
	// 9 MiB of resident memory that ipamd (budget 30 MiB, one per node) does not spend on the
	// Node and Events it writes through a core/v1 REST client.
	// Any API group's types but core/v1 also mean some all-groups package came in (the
	// clientset, applyconfigurations, a scheme of every group).
	ipamdForbiddenAnywhere = []string{"k8s.io/client-go/kubernetes", "k8s.io/client-go/informers",
		"k8s.io/client-go/applyconfigurations", "sigs.k8s.io/controller-runtime", "k8s.io/api"}
	ipamdAllowed = []string{"k8s.io/api/core/v1"}

	// The roots whose transitive graphs are checked, relative to the module.
	cniRoots       = []string{"cni", "cmd/flatnet-cni"}
	fakecloudRoots = []string{"fakecloud", "cmd/fakecloud"}
	ipamdRoots     = []string{"ipamd", "cmd/flatnet-ipamd"}
)

// Check applies every rule to the packages of module mod and returns the violations, sorted.
func Check(mod string, pkgs []Package) []Violation {
	byPath := make(map[string]Package, len(pkgs))
	for _, p := range pkgs {
		byPath[p.ImportPath] = p
	}
	var out []Violation
	for _, p := range pkgs {
		rel, ok := relPath(mod, p.ImportPath)
		if !ok {
			continue
		}
		for _, imp := range p.Imports {
			if rule := directRule(mod, rel, imp, byPath[imp].Standard || imp == "C"); rule != "" {
				out = append(out, Violation{Pkg: p.ImportPath, Import: imp, Rule: rule})
			}
		}
	}
	out = append(out, reachable(mod, pkgs, byPath, cniRoots, cniForbiddenAnywhere, nil,
		"the CNI binary's import graph carries no Kubernetes, memdb, Prometheus or logging library")...)
	out = append(out, reachable(mod, pkgs, byPath, fakecloudRoots, kubernetes, nil,
		"fakecloud depends on no Kubernetes package")...)
	out = append(out, reachable(mod, pkgs, byPath, ipamdRoots, ipamdForbiddenAnywhere, ipamdAllowed,
		"ipamd links no client-go clientset, informers, controller-runtime or API types but core/v1 (memory budget)")...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Pkg != out[j].Pkg {
			return out[i].Pkg < out[j].Pkg
		}
		return out[i].Import < out[j].Import
	})
	return out
}

// directRule returns the rule that importing imp from the module package at rel breaks, or "".
func directRule(mod, rel, imp string, std bool) string {
	irel, inModule := relPath(mod, imp)
	if inModule && under(irel, "cmd") {
		return "nothing imports cmd"
	}
	if inModule && irel == "" {
		return "" // the module's root package holds the project's version only; anyone may read it
	}
	if underAny(rel, sharedLeaves) {
		if inModule && !underAny(irel, sharedLeaves) {
			return "the shared leaves (" + strings.Join(sharedLeaves, ", ") + ") import nothing of the module"
		}
		return ""
	}
	if inModule && underAny(irel, sharedLeaves) {
		return "" // anyone may use a shared leaf
	}
	if inModule && under(irel, testOnly) && !underAny(rel, toolsAndTests) {
		return "product code imports nothing under test/ (test suites and their harnesses): the lab is lab/"
	}
	if inModule && under(irel, providertest) && !under(rel, providertest) {
		return "providers/providertest is imported by tests only"
	}
	switch {
	case under(rel, "cmd"):
		if inModule && !underAny(irel, cmdMayImport) {
			return "cmd imports only " + strings.Join(cmdMayImport, ", ")
		}
	case under(rel, "cni"):
		if inModule && !underAny(irel, cniMayImportInModule) ||
			!inModule && !std && !underAny(imp, cniMayImportExternal) {
			return "cni imports only ipamd/wire, internal/failpoint, CNI libraries, netlink, netns, x/sys and the standard library"
		}
	case underAny(rel, consumers):
		switch {
		case inModule && under(irel, "fakecloud"):
			return "ipamd and lbcontroller reach a cloud only through providers, never fakecloud's packages"
		case inModule && under(irel, "providers") && irel != "providers":
			return "ipamd and lbcontroller import the seam (providers), not a driver: cmd/ and the lab choose drivers"
		case inModule && underAny(irel, consumers) && !sameTop(rel, irel):
			return "ipamd and lbcontroller do not import each other"
		}
	case under(rel, "providers"):
		switch {
		case inModule && underAny(irel, providerConsumers):
			return "providers and its drivers import no consumer (ipamd, lbcontroller, cni, nodeagent, lab, test)"
		case inModule && rel == "providers" && (under(irel, "providers") || under(irel, "fakecloud")):
			return "the seam (providers) imports no driver and no cloud's packages"
		case inModule && underAny(irel, fakecloudPrivate) && (!under(rel, providertest) || !under(irel, providertestMayUse)):
			return "drivers use fakecloud's client and API, not its server or internals"
		}
	case under(rel, "nodeagent"):
		// The kubelet stand-in knows Kubernetes and the CNI, not the cloud: it is told its
		// provider ID, as a kubelet is.
		if inModule && (under(irel, "fakecloud") || under(irel, "ipamd") || under(irel, "lbcontroller")) {
			return "nodeagent imports no fakecloud, ipamd or lbcontroller package"
		}
	case under(rel, "fakecloud"):
		if inModule && !under(irel, "fakecloud") {
			return "fakecloud imports nothing of its consumers"
		}
		if underAny(imp, kubernetes) {
			return "fakecloud depends on no Kubernetes package"
		}
	default:
		if inModule && underAny(irel, fakecloudPrivate) {
			return "nothing outside fakecloud and cmd imports fakecloud's server or internals"
		}
	}
	return ""
}

// reachable walks the import graph breadth-first from every module package under roots and reports
// each forbidden package it reaches once, with the shortest chain that pulls it in.
// Packages under allowed are not forbidden even when a forbidden prefix covers them.
func reachable(mod string, pkgs []Package, byPath map[string]Package, roots, forbidden, allowed []string, rule string) []Violation {
	var start []string
	for _, p := range pkgs {
		if rel, ok := relPath(mod, p.ImportPath); ok && underAny(rel, roots) {
			start = append(start, p.ImportPath)
		}
	}
	sort.Strings(start)
	parent := map[string]string{}
	seen := map[string]bool{}
	queue := append([]string{}, start...)
	for _, s := range start {
		seen[s] = true
	}
	var out []Violation
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if underAny(cur, forbidden) && !underAny(cur, allowed) {
			chain := []string{cur}
			for at := cur; parent[at] != ""; at = parent[at] {
				chain = append([]string{parent[at]}, chain...)
			}
			out = append(out, Violation{Pkg: chain[0], Import: cur, Rule: rule, Chain: chain})
			continue // one report per forbidden entry point, not for everything behind it
		}
		for _, imp := range byPath[cur].Imports {
			if !seen[imp] {
				seen[imp] = true
				parent[imp] = cur
				queue = append(queue, imp)
			}
		}
	}
	return out
}

// relPath returns path relative to module mod, and whether path is in the module at all.
func relPath(mod, path string) (string, bool) {
	if path == mod {
		return "", true
	}
	if rest, ok := strings.CutPrefix(path, mod+"/"); ok {
		return rest, true
	}
	return "", false
}

// sameTop reports whether two module-relative paths share their first path element.
func sameTop(a, b string) bool {
	ta, _, _ := strings.Cut(a, "/")
	tb, _, _ := strings.Cut(b, "/")
	return ta == tb
}

// under reports whether path is prefix or lies below it, by whole path elements.
func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

func underAny(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if under(path, p) {
			return true
		}
	}
	return false
}
