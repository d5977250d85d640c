package stack_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/builder/stack"
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

// TestBuildHello runs the builder conformance suite on examples/hello with
// real GHC, stack and git, offline, with a generated stack.yaml.
func TestBuildHello(t *testing.T) {
	requireStack(t)
	testsuite.BuilderSuite(t, testsuite.BuilderHarness{
		Builder: stack.New(stack.Options{}), Tool: "stack",
		Env: []string{"STACK_ROOT=" + stackRoot(t)}, Passed: "Test suite spec passed", TestStep: "stack build --test: ",
	})
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
