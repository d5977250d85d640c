package stack_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/builder/stack"
	cabalreader "github.com/distributive-flow/dflow/backends/reader/cabal"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
)

// requireStack skips t, loudly, unless stack is on PATH; nothing else is a
// reason to skip.
func requireStack(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("stack"); err != nil {
		t.Skip("SKIPPED: stack is not on PATH, so this test cannot build the Haskell example with stack; " +
			"install it: apt-get install haskell-stack ghc libghc-warp-dev")
	}
}

// stackRoot is an empty STACK_ROOT, so the user's ~/.stack is never used
// and nothing is downloaded.
func stackRoot(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "stack-root")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.yaml"),
		[]byte("# dflow tests: offline\nsystem-ghc: true\ninstall-ghc: false\nrecommend-stack-upgrade: false\n"), 0o644))
	return dir
}

func TestBuildHello(t *testing.T) {
	requireStack(t)
	ctx := context.Background()
	repo := testsuite.HelloRepo(t, testsuite.Example(t, "hello"))
	d, err := cabalreader.New().Read(ctx, repo)
	require.NoError(t, err)
	var log bytes.Buffer
	o := backends.BuildOptions{
		Dir:     repo,
		Targets: []string{deploy.KindExecutable, deploy.KindLibrary, deploy.KindSource},
		Env:     []string{"STACK_ROOT=" + stackRoot(t)},
		WorkDir: filepath.Join(t.TempDir(), "work"),
		Log:     &log,
	}
	start := time.Now()
	tg, err := stack.New(stack.Options{}).Build(ctx, d, o)
	require.NoError(t, err, log.String())
	t.Logf("stack build --test of examples/hello (cold .stack-work, offline): %s", time.Since(start).Round(100*time.Millisecond))
	require.Contains(t, log.String(), "Test suite spec passed")

	require.Equal(t, testsuite.Git(t, repo, "rev-parse", "HEAD"), tg.Version, "a build does not make the tree dirty")
	require.Equal(t, "hello", tg.Package)
	var paths []string
	for _, a := range tg.Artifacts {
		paths = append(paths, a.Kind+":"+a.Path)
		require.NotEmpty(t, a.SHA256)
		require.Greater(t, a.Size, int64(0))
	}
	require.Equal(t, []string{"executable:bin/hello", "library:lib/hello-0.1.0.0.tar.gz", "source:src/hello-0.1.0.0.tar"}, paths)
	require.Equal(t, filepath.Join(o.WorkDir, "bundle-"+tg.Version+".tar.zst"), tg.BundlePath)
	fi, err := os.Stat(tg.BundlePath)
	require.NoError(t, err)
	require.Equal(t, tg.Size, fi.Size())
	require.True(t, strings.HasPrefix(tg.Digest, "sha256:") || len(tg.Digest) == 64, tg.Digest)

	// A failing test suite fails the build, and the error ends with its
	// output.
	spec := filepath.Join(repo, "test", "Spec.hs")
	require.NoError(t, os.WriteFile(spec, []byte("main :: IO ()\nmain = ioError (userError \"dflow: deliberate test failure\")\n"), 0o644))
	_, err = stack.New(stack.Options{}).Build(ctx, d, o)
	require.ErrorContains(t, err, "stack build of hello: stack build --test:")
	require.ErrorContains(t, err, "deliberate test failure")
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	b := stack.New(stack.Options{})
	d := deploy.TargetDesc{Package: "hello", Version: "0.1", Executables: []deploy.Component{{Name: "hello"}}}
	_, err := b.Build(ctx, deploy.TargetDesc{}, backends.BuildOptions{})
	require.ErrorContains(t, err, "stack build: the package description has no package name")
	_, err = b.Build(ctx, d, backends.BuildOptions{Dir: t.TempDir(), WorkDir: t.TempDir()})
	require.ErrorContains(t, err, "stack build of hello: nothing to build")
	_, err = b.Build(ctx, d, backends.BuildOptions{Dir: t.TempDir(), WorkDir: t.TempDir(), Targets: []string{deploy.KindLibrary}})
	require.ErrorContains(t, err, `stack build of hello: target "library" asked for, but the package has no library`)
	_, err = b.Build(ctx, d, backends.BuildOptions{Dir: t.TempDir(), WorkDir: t.TempDir(), Targets: []string{deploy.KindExecutable}})
	require.ErrorContains(t, err, "stack build of hello: version:")
	require.ErrorContains(t, err, "not in a git repository")
}
