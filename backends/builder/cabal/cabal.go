package cabal

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/internal/build"
	"github.com/distributive-flow/dflow/deploy"
)

// Name is the builder's name in dflow.yaml and --builder.
const Name = "cabal"

// Options configure the builder.
type Options struct {
	// Cabal is the cabal-install executable; default "cabal" from PATH.
	Cabal string
	// Git is the git executable; default "git" from PATH.
	Git string
}

// Builder builds Haskell packages with cabal-install. It holds no state
// between builds and is safe for concurrent use on different directories.
type Builder struct {
	cabal, git string
}

var _ backends.Builder = (*Builder)(nil)

// New returns a Builder.
func New(o Options) *Builder {
	if o.Cabal == "" {
		o.Cabal = "cabal"
	}
	if o.Git == "" {
		o.Git = "git"
	}
	return &Builder{cabal: o.Cabal, git: o.Git}
}

// cabalFlags go to every cabal command that reads the project configuration,
// so that build, test and list-bin agree on it and nothing reconfigures.
var cabalFlags = []string{"--enable-tests", "--test-show-details=direct"}

// Build builds the package d describes in o.Dir, runs its test suites, and
// bundles the artifacts o.Targets asks for into WorkDir/bundle-VERSION.tar.zst
// (a later build of the same version into the same WorkDir replaces it).
// Inputs are checked before anything runs. Errors say which step failed and end
// with the last lines of that tool's output; a cancelled ctx kills the running
// tool and its children.
func (b *Builder) Build(ctx context.Context, d deploy.TargetDesc, o backends.BuildOptions) (deploy.Target, error) {
	start := time.Now()
	kinds, o, env, err := build.Prepare("cabal", d, o)
	if err != nil {
		return deploy.Target{}, err
	}
	fail := func(step string, err error) (deploy.Target, error) {
		return deploy.Target{}, fmt.Errorf("cabal build of %s: %s: %w", d.Package, step, err)
	}
	r := build.Runner{Dir: o.Dir, Env: env, Log: o.Log}

	version, err := build.Version(ctx, b.git, o.Dir, env)
	if err != nil {
		return fail("version", err)
	}
	stage, err := build.Stage(o.WorkDir)
	if err != nil {
		return fail("work dir", err)
	}
	defer os.RemoveAll(stage)

	if _, err := r.Run(ctx, b.cabal, append(append([]string{"build"}, cabalFlags...), ".")...); err != nil {
		return fail("cabal build", err)
	}
	if len(d.TestSuites) > 0 {
		if _, err := r.Run(ctx, b.cabal, append(append([]string{"test"}, cabalFlags...), ".")...); err != nil {
			return fail("cabal test", err)
		}
	}

	var files []build.File
	for _, kind := range kinds {
		switch kind {
		case deploy.KindExecutable:
			for _, e := range d.Executables {
				args := append(append([]string{"list-bin"}, cabalFlags...), d.Package+":exe:"+e.Name)
				out, err := r.Run(ctx, b.cabal, args...)
				if err != nil {
					return fail("cabal list-bin "+e.Name, err)
				}
				path := build.LastLine(out)
				if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
					return fail("cabal list-bin "+e.Name, fmt.Errorf("cabal names %q, which is not a built executable (is it buildable?)", path))
				}
				files = append(files, build.Executable(e.Name, path))
			}
		case deploy.KindLibrary:
			dir := filepath.Join(stage, "sdist")
			if _, err := r.Run(ctx, b.cabal, "sdist", "--output-directory", dir, "."); err != nil {
				return fail("cabal sdist", err)
			}
			f, err := build.Library("cabal", d, dir)
			if err != nil {
				return fail("cabal sdist", err)
			}
			files = append(files, f)
		case deploy.KindSource:
			f, err := build.Source(ctx, b.git, r, d, stage)
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

// Version returns the git commit hash of HEAD of the repository dir is in,
// with "-dirty" appended when `git status` shows changes under dir: modified,
// staged, deleted or untracked files (ignored files, and dist-newstyle,
// .stack-work and .dflow directly under dir, do not count). A dir outside any
// git repository, or in one with no commit yet, is an error. It is the
// Version of every Target Build returns.
func Version(ctx context.Context, dir string) (string, error) {
	return build.Version(ctx, "git", dir, os.Environ())
}
