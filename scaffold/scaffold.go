package scaffold

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	cabalreader "github.com/distributive-flow/dflow/backends/reader/cabal"
	"github.com/distributive-flow/dflow/backends/reader/hpack"
	"github.com/distributive-flow/dflow/deploy"
)

// Result is what Init wrote.
type Result struct {
	Path    string   // the dflow.yaml written
	Package string   // the package's name (the cluster's name, sanitized)
	File    string   // the package file, relative to the directory
	Targets []string // the target kinds
}

// Init writes dir/dflow.yaml for the package file in dir, with targets
// (default: the executable) and every other key at its default with a
// comment. An existing dflow.yaml is kept unless force. Errors say what to
// do, and nothing is written then.
func Init(ctx context.Context, dir string, targets []string, force bool) (Result, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Result{}, fmt.Errorf("init: %w", err)
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return Result{}, fmt.Errorf("init: %s: not a directory", dir)
	}
	dir = abs
	out := filepath.Join(dir, deploy.FileName)
	if _, err := os.Stat(out); err == nil && !force {
		return Result{}, fmt.Errorf("init: %s exists; --force overwrites it", out)
	}
	pkg, err := findPackage(dir)
	if err != nil {
		return Result{}, fmt.Errorf("init: %w", err)
	}
	desc, err := readPackage(ctx, filepath.Join(dir, pkg))
	if err != nil {
		return Result{}, fmt.Errorf("init: %w", err)
	}
	if len(targets) == 0 {
		if len(desc.Executables) == 0 {
			return Result{}, noExecutable(ctx, dir, pkg, desc)
		}
		targets = []string{deploy.KindExecutable}
	}
	if err := checkTargets(desc, pkg, targets); err != nil {
		return Result{}, fmt.Errorf("init: %w", err)
	}
	data := deploy.InitFileTargets(sanitize(desc.Package), pkg, targets)
	if _, err := deploy.Parse(out, data, dir); err != nil {
		return Result{}, fmt.Errorf("init: the generated file does not parse (a bug): %w", err)
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return Result{}, fmt.Errorf("init: %w", err)
	}
	return Result{Path: out, Package: desc.Package, File: pkg, Targets: targets}, nil
}

// findPackage returns the one package file in dir.
func findPackage(dir string) (string, error) {
	var found []string
	matches, _ := filepath.Glob(filepath.Join(dir, "*.cabal"))
	for _, m := range matches {
		found = append(found, filepath.Base(m))
	}
	if _, err := os.Stat(filepath.Join(dir, "package.yaml")); err == nil {
		found = append(found, "package.yaml")
	}
	sort.Strings(found)
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no package file (*.cabal or package.yaml) in %s", dir)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("several package files in %s (%s): keep one", dir, strings.Join(found, ", "))
}

// readPackage reads a package file with the reader for its kind.
func readPackage(ctx context.Context, file string) (deploy.TargetDesc, error) {
	if filepath.Base(file) == "package.yaml" {
		return hpack.New().Read(ctx, file)
	}
	return cabalreader.New().Read(ctx, file)
}

// checkTargets checks that the package has what targets asks for.
func checkTargets(d deploy.TargetDesc, pkg string, targets []string) error {
	for _, k := range targets {
		switch k {
		case deploy.KindExecutable:
			if len(d.Executables) == 0 {
				return fmt.Errorf("--target executable: package %s (%s) has no executable", d.Package, pkg)
			}
		case deploy.KindLibrary:
			if d.Library == nil {
				return fmt.Errorf("--target library: package %s (%s) has no library", d.Package, pkg)
			}
		case deploy.KindSource:
		default:
			return fmt.Errorf("--target %s: want executable, library or source", k)
		}
	}
	return nil
}

// noExecutable is init's answer for a package without an executable: what
// the user can do instead, naming the package files below dir that have
// executables.
func noExecutable(ctx context.Context, dir, pkg string, d deploy.TargetDesc) error {
	var b strings.Builder
	fmt.Fprintf(&b, "init: package %s (%s) has no executable, so nothing would run on the nodes (a deploy of target [executable] would fail); nothing written.\n", d.Package, pkg)
	found := executablesBelow(ctx, dir)
	switch len(found) {
	case 0:
	case 1:
		fmt.Fprintf(&b, "The package with an executable below this directory is %s: run dflow init in %s.\n", found[0], filepath.Dir(strings.SplitN(found[0], " ", 2)[0]))
	default:
		fmt.Fprintf(&b, "Packages with executables below this directory (pick one, and run dflow init in its directory):\n")
		for _, f := range found {
			fmt.Fprintf(&b, "  %s\n", f)
		}
	}
	lib := ""
	if d.Library != nil {
		lib = "dflow init --target library (its cabal sdist), or "
	}
	fmt.Fprintf(&b, "To ship this package without running it: %sdflow init --target source (its source archive).", lib)
	return errors.New(b.String())
}

// maxSearchDepth bounds how deep init looks for packages with executables.
const maxSearchDepth = 3

// executablesBelow lists the package files in the directories below dir
// (not dir itself; at most maxSearchDepth deep; build outputs, hidden and
// vendored directories skipped) that have executables, as
// "path/to/file (executables a, b)", relative to dir.
func executablesBelow(ctx context.Context, dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if e.IsDir() {
			name := e.Name()
			if rel != "." && (strings.HasPrefix(name, ".") || name == "dist-newstyle" || name == "dist" || name == "node_modules" || strings.Count(rel, string(filepath.Separator)) >= maxSearchDepth) {
				return filepath.SkipDir
			}
			return nil
		}
		if filepath.Dir(rel) == "." || !(strings.HasSuffix(e.Name(), ".cabal") || e.Name() == "package.yaml") {
			return nil
		}
		d, err := readPackage(ctx, p)
		if err != nil || len(d.Executables) == 0 {
			return nil
		}
		var names []string
		for _, x := range d.Executables {
			names = append(names, x.Name)
		}
		out = append(out, fmt.Sprintf("%s (executables %s)", rel, strings.Join(names, ", ")))
		return nil
	})
	sort.Strings(out)
	return out
}

// sanitize makes a package name a valid cluster name.
func sanitize(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-._")
	if s == "" {
		s = "app"
	}
	if len(s) > 63 {
		s = s[:63]
	}
	return s
}
