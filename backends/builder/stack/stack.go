package stack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/internal/build"
	"github.com/distributive-flow/dflow/deploy"
)

// Name is the builder's name in dflow.yaml and --builder.
const Name = "stack"

// Options configure the builder.
type Options struct {
	// Stack is the stack executable; default "stack" from PATH.
	Stack string
	// Git is the git executable; default "git" from PATH.
	Git string
	// GHC is the ghc whose version names the resolver of a generated
	// stack.yaml (ghc-VERSION); default "ghc" from PATH.
	GHC string
}

// Builder builds Haskell packages with stack. It holds no state between
// builds and is safe for concurrent use on different directories.
type Builder struct {
	stack, git, ghc string
}

var _ backends.Builder = (*Builder)(nil)

// New returns a Builder.
func New(o Options) *Builder {
	if o.Stack == "" {
		o.Stack = "stack"
	}
	if o.Git == "" {
		o.Git = "git"
	}
	if o.GHC == "" {
		o.GHC = "ghc"
	}
	return &Builder{stack: o.Stack, git: o.Git, ghc: o.GHC}
}

// stackFlags go first to every stack command: use the installed GHC, never
// download one, and write plain output for the log.
var stackFlags = []string{"--system-ghc", "--no-install-ghc", "--no-terminal", "--color", "never"}

// Build builds the package d describes in o.Dir with `stack build --test`,
// and bundles the artifacts o.Targets asks for into
// WorkDir/bundle-VERSION.tar.zst, in the same shape as the cabal builder:
// bin/NAME, lib/PKG-VER.tar.gz, src/PKG-VER.tar. Errors say which step
// failed and end with the last lines of that tool's output; a cancelled ctx
// kills the running tool and its children.
func (b *Builder) Build(ctx context.Context, d deploy.TargetDesc, o backends.BuildOptions) (deploy.Target, error) {
	start := time.Now()
	kinds, o, env, err := build.Prepare("stack", d, o)
	if err != nil {
		return deploy.Target{}, err
	}
	fail := func(step string, err error) (deploy.Target, error) {
		return deploy.Target{}, fmt.Errorf("stack build of %s: %s: %w", d.Package, step, err)
	}
	run := func(args ...string) ([]byte, error) {
		return build.Runner{Dir: o.Dir, Env: env, Log: o.Log}.Run(ctx, b.stack, append(append([]string(nil), stackFlags...), args...)...)
	}

	version, err := build.Version(ctx, b.git, o.Dir, env)
	if err != nil {
		return fail("version", err)
	}
	stage, err := build.Stage(o.WorkDir)
	if err != nil {
		return fail("work dir", err)
	}
	defer os.RemoveAll(stage)

	// The project: the package's own stack.yaml (or one STACK_YAML names),
	// else a generated one that needs nothing from the network.
	var project []string
	if !hasProject(o.Dir, env) {
		file, err := b.writeProject(ctx, o, env)
		if err != nil {
			return fail("stack.yaml", err)
		}
		project = []string{"--stack-yaml", file}
	}

	if _, err := run(append(append([]string(nil), project...), "build", "--test", d.Package)...); err != nil {
		return fail("stack build --test", err)
	}

	var files []build.File
	for _, kind := range kinds {
		switch kind {
		case deploy.KindExecutable:
			out, err := run(append(append([]string(nil), project...), "path", "--local-install-root")...)
			if err != nil {
				return fail("stack path --local-install-root", err)
			}
			root := build.LastLine(out)
			for _, e := range d.Executables {
				path := filepath.Join(root, "bin", e.Name)
				if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
					return fail("executable "+e.Name, fmt.Errorf("stack installed no %s (is it buildable?)", path))
				}
				files = append(files, build.Executable(e.Name, path))
			}
		case deploy.KindLibrary:
			dir := filepath.Join(stage, "sdist")
			if _, err := run(append(append([]string(nil), project...), "sdist", "--tar-dir", dir, o.Dir)...); err != nil {
				return fail("stack sdist", err)
			}
			f, err := build.Library("stack", d, dir)
			if err != nil {
				return fail("stack sdist", err)
			}
			files = append(files, f)
		case deploy.KindSource:
			f, err := build.Source(ctx, b.git, build.Runner{Dir: o.Dir, Env: env, Log: o.Log}, d, stage)
			if err != nil {
				return fail("git archive", err)
			}
			files = append(files, f)
		}
	}

	t, err := build.Bundle(d.Package, version, files, o.WorkDir, start)
	if err != nil {
		return fail("bundle", err)
	}
	return t, nil
}

// hasProject reports whether stack finds a project of its own for dir: a
// STACK_YAML in the environment, or a stack.yaml in dir or above it.
func hasProject(dir string, env []string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, "STACK_YAML=") && kv != "STACK_YAML=" {
			return true
		}
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "stack.yaml")); err == nil {
			return true
		}
		if filepath.Dir(d) == d {
			return false
		}
	}
}

// writeProject writes WorkDir/stack-dflow.yaml: the package alone, on the
// installed GHC (resolver ghc-VERSION, which stack resolves without a
// snapshot download), its dependencies from GHC's global package database.
func (b *Builder) writeProject(ctx context.Context, o backends.BuildOptions, env []string) (string, error) {
	out, err := build.Runner{Dir: o.Dir, Env: env}.Run(ctx, b.ghc, "--numeric-version")
	if err != nil {
		return "", fmt.Errorf("find the GHC version for the resolver: %w", err)
	}
	ghcVersion := build.LastLine(out)
	yaml := fmt.Sprintf("# Written by dflow: the package alone, on the installed GHC, offline.\n"+
		"resolver: ghc-%s\nsystem-ghc: true\ninstall-ghc: false\npackages:\n- %q\n", ghcVersion, o.Dir)
	file := filepath.Join(o.WorkDir, "stack-dflow.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		return "", err
	}
	return file, nil
}
