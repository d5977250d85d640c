package cabal_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/builder/cabal"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
)

// helloDesc is what the cabal package reader gives for examples/hello.
func helloDesc(dir string) deploy.TargetDesc { return testsuite.HelloDesc(dir) }

var allKinds = testsuite.AllKinds

func TestValidateBeforeRunningAnything(t *testing.T) {
	// A cabal and a git that do not exist: a validation error must come first.
	b := cabal.New(cabal.Options{Cabal: "/nonexistent/cabal", Git: "/nonexistent/git"})
	dir := t.TempDir()
	noExe := helloDesc(dir)
	noExe.Executables = nil
	noLib := helloDesc(dir)
	noLib.Library = nil
	opts := func(f func(*backends.BuildOptions)) backends.BuildOptions {
		o := backends.BuildOptions{Dir: dir, WorkDir: t.TempDir(), Targets: allKinds}
		f(&o)
		return o
	}
	for _, c := range []struct {
		name string
		d    deploy.TargetDesc
		o    backends.BuildOptions
		want string
	}{
		{"unknown kind", helloDesc(dir), opts(func(o *backends.BuildOptions) { o.Targets = []string{"executable", "docker-image"} }), `unknown target kind "docker-image"`},
		{"executable without executables", noExe, opts(func(o *backends.BuildOptions) {}), `target "executable" asked for, but the package has no executable`},
		{"library without library", noLib, opts(func(o *backends.BuildOptions) { o.Targets = []string{"library"} }), `the package has no library`},
		{"empty dir", helloDesc(dir), opts(func(o *backends.BuildOptions) { o.Dir = "" }), "no package directory given"},
		{"missing dir", helloDesc(dir), opts(func(o *backends.BuildOptions) { o.Dir = filepath.Join(dir, "nope") }), "package directory: stat"},
		{"empty work dir", helloDesc(dir), opts(func(o *backends.BuildOptions) { o.WorkDir = "" }), "no work directory given"},
		{"no targets", helloDesc(dir), opts(func(o *backends.BuildOptions) { o.Targets = nil }), "nothing to build"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := b.Build(context.Background(), c.d, c.o)
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
			require.Contains(t, err.Error(), "cabal build of hello: ")
			require.NotContains(t, err.Error(), "nonexistent", "nothing may run before the inputs are checked")
		})
	}
}

func TestVersion(t *testing.T) {
	ctx := context.Background()
	t.Run("outside a git repository", func(t *testing.T) {
		dir := t.TempDir()
		t.Setenv("GIT_CEILING_DIRECTORIES", filepath.Dir(dir))
		_, err := cabal.Version(ctx, dir)
		require.EqualError(t, err, dir+" is not in a git repository: dflow versions builds by commit; run git init && git commit")

		// Build says the same, before running cabal.
		b := cabal.New(cabal.Options{Cabal: "/nonexistent/cabal"})
		_, err = b.Build(ctx, helloDesc(dir), backends.BuildOptions{Dir: dir, WorkDir: t.TempDir(), Targets: allKinds})
		require.ErrorContains(t, err, "cabal build of hello: version: "+dir+" is not in a git repository")
	})
	t.Run("no commit yet", func(t *testing.T) {
		dir := t.TempDir()
		testsuite.Git(t, dir, "init", "--quiet")
		_, err := cabal.Version(ctx, dir)
		require.ErrorContains(t, err, "no commit yet")
	})

	repo := testsuite.HelloRepo(t, testsuite.Example(t, "hello"))
	head := testsuite.Git(t, repo, "rev-parse", "HEAD")
	version := func() string {
		v, err := cabal.Version(ctx, repo)
		require.NoError(t, err)
		return v
	}
	require.Equal(t, head, version())

	// Ignored files do not make it dirty, nor do build outputs that a
	// package without a .gitignore leaves untracked.
	testsuite.Git(t, repo, "rm", "--quiet", ".gitignore")
	testsuite.Git(t, repo, "commit", "--quiet", "--message=no .gitignore")
	head = testsuite.Git(t, repo, "rev-parse", "HEAD")
	for _, dir := range []string{"dist-newstyle", ".dflow", ".stack-work"} {
		require.NoError(t, os.MkdirAll(filepath.Join(repo, dir, "cache"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(repo, dir, "cache", "plan.json"), []byte("{}"), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(repo, ".git", "info", "exclude"), []byte("*.log\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(repo, "build.log"), []byte("x"), 0o644))
	require.Equal(t, head, version(), "ignored files and build outputs must not make the tree dirty")

	// An untracked file does.
	require.NoError(t, os.WriteFile(filepath.Join(repo, "NOTES"), []byte("x"), 0o644))
	require.Equal(t, head+"-dirty", version())
	require.NoError(t, os.Remove(filepath.Join(repo, "NOTES")))

	// So does a modified tracked file.
	testsuite.AppendFile(t, filepath.Join(repo, "src", "Hello.hs"), "-- changed\n")
	require.Equal(t, head+"-dirty", version())
	testsuite.Git(t, repo, "checkout", "--", ".")
	require.Equal(t, head, version())

	// Changes outside dir do not count: dir is a package in a bigger repository.
	sub := filepath.Join(repo, "src")
	require.NoError(t, os.WriteFile(filepath.Join(repo, "NOTES"), []byte("x"), 0o644))
	v, err := cabal.Version(ctx, sub)
	require.NoError(t, err)
	require.Equal(t, head, v)
}

// TestBuildHello runs the builder conformance suite on examples/hello with
// real GHC, cabal and git, then what is the cabal builder's own: a build
// from an empty dist-newstyle gives the same bytes, a compile error fails
// the build, and a cancelled build stops at once.
func TestBuildHello(t *testing.T) {
	testsuite.RequireCabal(t)
	ctx := context.Background()
	cabalDir := testsuite.CabalDir(t)
	b := cabal.New(cabal.Options{})
	h := testsuite.BuilderSuite(t, testsuite.BuilderHarness{
		Builder: b, Tool: "cabal", Env: []string{"CABAL_DIR=" + cabalDir}, Passed: "Test suite spec: PASS", TestStep: "cabal test: ",
	})
	repo, first := h.Repo, h.First

	t.Run("the same commit built from scratch gives the same digest", func(t *testing.T) {
		require.NoError(t, os.RemoveAll(filepath.Join(repo, "dist-newstyle")))
		begin := time.Now()
		again, log, err := h.Build(t, testsuite.AllKinds...)
		require.NoError(t, err, log)
		t.Logf("rebuild after rm -rf dist-newstyle: %v", time.Since(begin))
		for i := range first.Artifacts {
			require.Equal(t, first.Artifacts[i], again.Artifacts[i], "GHC output is reproducible here: %s", first.Artifacts[i].Path)
		}
		require.Equal(t, first.Digest, again.Digest)
	})

	t.Run("a compile error fails the build", func(t *testing.T) {
		defer testsuite.Git(t, repo, "checkout", "--", ".")
		replaceIn(t, filepath.Join(repo, "src", "Hello.hs"), `L.pack ("hello from " ++ version s ++ "\n")`, `L.pack (42 :: Int)`)
		_, _, err := h.Build(t, deploy.KindExecutable)
		require.Error(t, err)
		t.Logf("error:\n%v", err)
		require.Contains(t, err.Error(), "cabal build of hello: cabal build: ")
		require.Contains(t, err.Error(), "src/Hello.hs:")
		require.Contains(t, err.Error(), "error:")
	})

	t.Run("cancelling kills the build", func(t *testing.T) {
		require.NoError(t, os.RemoveAll(filepath.Join(repo, "dist-newstyle")))
		ctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		defer cancel()
		begin := time.Now()
		_, err := b.Build(ctx, h.Desc, backends.BuildOptions{Dir: repo, Targets: testsuite.AllKinds, Env: []string{"CABAL_DIR=" + cabalDir}, WorkDir: h.WorkDir})
		require.Error(t, err)
		require.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
		require.Less(t, time.Since(begin), 10*time.Second)
	})
}

func replaceIn(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(b), old)
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644))
}
