// Package deptest makes dependency rules tests: a rule names packages of
// this module and the packages they must never depend on, each with the
// reason, and Check fails on every dependency that breaks it, showing the
// import path that brings it in.
package deptest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Rule forbids the packages Pkgs matches to depend on those BadDeps names,
// directly or through other packages.
type Rule struct {
	// Pkgs is a `go list` pattern, relative to the module root ("./store",
	// "./connectors/...").
	Pkgs string
	// Except are packages Pkgs matches that the rule does not cover: import
	// paths, or a path ending in "/..." for it and every package below.
	Except []string
	// BadDeps maps an import path, or a path ending in "/..." for it and
	// every package below, or NonStandard, to the reason it is forbidden.
	BadDeps map[string]string
	// Tests covers the packages' tests too, and what they import.
	Tests bool
}

// Check lists the rule's packages with `go list` and reports each
// forbidden dependency as a test error.
func (r Rule) Check(t *testing.T) {
	t.Helper()
	pkgs, err := List(r.Pkgs, r.Tests)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := r.Violations(pkgs)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Error(v)
	}
}

// NonStandard, as a pattern of Rule.BadDeps, is every package outside the
// standard library.
const NonStandard = "(not the standard library)"

// Package is one package as `go list -deps -json` describes it.
type Package struct {
	ImportPath string
	Imports    []string
	Standard   bool
	// DepOnly is a package listed only as a dependency of one the pattern
	// matched.
	DepOnly bool
	// ForTest names the package whose test this variant of a package is
	// compiled for.
	ForTest string
	Error   *struct{ Err string }
}

// List runs `go list -deps -json` on pattern from the module root, with the
// tests' packages when tests is set.
func List(pattern string, tests bool) ([]Package, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOMOD: %w", err)
	}
	args := []string{"list", "-e", "-deps", "-json=ImportPath,Imports,Standard,DepOnly,ForTest,Error"}
	if tests {
		args = append(args, "-test")
	}
	cmd := exec.Command("go", append(args, pattern)...)
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s: %w: %s", strings.Join(cmd.Args[1:], " "), err, stderr.String())
	}
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p Package
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// Violation is a package that depends on a forbidden one.
type Violation struct {
	Pkg  string   // the package, "(test)" after it for its tests
	Bad  string   // the forbidden package
	Why  string   // the rule's reason
	Path []string // Pkg's imports that lead to Bad, Bad last
}

func (v Violation) String() string {
	return fmt.Sprintf("%s must not depend on %s: %s\n\tvia %s", v.Pkg, v.Bad, v.Why, strings.Join(v.Path, " → "))
}

// Violations checks the packages List returned against the rule. It fails
// when the pattern matched no package, so that a rule whose packages moved
// does not pass by checking nothing, and when go list could not load one.
func (r Rule) Violations(pkgs []Package) ([]Violation, error) {
	byPath := map[string]Package{}
	for _, p := range pkgs {
		if p.Error != nil {
			return nil, fmt.Errorf("go list %s: %s: %s", r.Pkgs, p.ImportPath, p.Error.Err)
		}
		byPath[p.ImportPath] = p
	}
	var out []Violation
	seen := map[[2]string]bool{} // a package and its test variants report a pattern once
	roots := 0
	for _, p := range pkgs {
		if p.DepOnly || strings.HasSuffix(p.ImportPath, ".test") { // .test: the generated test main
			continue
		}
		roots++
		name := plain(p.ImportPath)
		if p.ForTest != "" {
			name = p.ForTest + " (test)"
		}
		if matchAny(r.Except, plain(p.ImportPath)) || (p.ForTest != "" && matchAny(r.Except, p.ForTest)) {
			continue
		}
		for _, path := range reach(byPath, p.ImportPath) {
			bad := path[len(path)-1]
			pat, why, ok := r.reason(bad, byPath[bad].Standard)
			// One violation per package and forbidden pattern: the nearest.
			if !ok || seen[[2]string{name, pat}] {
				continue
			}
			seen[[2]string{name, pat}] = true
			out = append(out, Violation{Pkg: name, Bad: bad, Why: why, Path: path})
		}
	}
	if roots == 0 {
		return nil, fmt.Errorf("rule for %s covers no package", r.Pkgs)
	}
	slices.SortFunc(out, func(a, b Violation) int {
		return cmp.Or(strings.Compare(a.Pkg, b.Pkg), strings.Compare(a.Bad, b.Bad))
	})
	return out, nil
}

func (r Rule) reason(pkg string, std bool) (pattern, why string, ok bool) {
	for pat, why := range r.BadDeps {
		if pat == NonStandard && !std || match(pat, pkg) {
			return pat, why, true
		}
	}
	return "", "", false
}

// reach walks the imports breadth first from root and returns, for each
// package it reaches, the shortest chain of imports to it (plain import
// paths, the package last), nearest packages first.
func reach(byPath map[string]Package, root string) [][]string {
	var paths [][]string
	reached := map[string]bool{}
	visited := map[string]bool{root: true}
	type step struct {
		pkg  string
		path []string
	}
	queue := []step{{pkg: root}}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, imp := range byPath[s.pkg].Imports {
			if visited[imp] {
				continue
			}
			visited[imp] = true
			path := append(slices.Clip(s.path), plain(imp))
			if !reached[plain(imp)] { // a test's variant of a package reached already
				reached[plain(imp)] = true
				paths = append(paths, path)
			}
			queue = append(queue, step{pkg: imp, path: path})
		}
	}
	return paths
}

// plain drops the " [p.test]" that names a package compiled for a test.
func plain(importPath string) string {
	p, _, _ := strings.Cut(importPath, " ")
	return p
}

func matchAny(patterns []string, pkg string) bool {
	return slices.ContainsFunc(patterns, func(pat string) bool { return match(pat, pkg) })
}

// match reports whether pkg is pat, or lies under pat when pat ends in
// "/...".
func match(pat, pkg string) bool {
	if base, ok := strings.CutSuffix(pat, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pat
}
