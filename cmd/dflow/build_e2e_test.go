package main_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
)

// TestBuildCommitHashIsReproducible: building a commit with --commit-hash
// (in a clean worktree, while the working tree has moved on) gives the
// digest of a build of a clean working tree at that commit.
func TestBuildCommitHashIsReproducible(t *testing.T) {
	t.Parallel()
	p := helloProject(t, fmt.Sprintf("app:\n  port: %d\n", testsuite.FreePort(t)))
	v1 := p.commit(1)
	build := func(args ...string) (version, digest string) {
		out, errOut := p.run(append([]string{"build", "-o", "json"}, args...)...)
		var b struct{ Version, Digest string }
		require.NoError(t, json.Unmarshal([]byte(out), &b), "%s\n%s", out, errOut)
		return b.Version, b.Digest
	}
	version, clean := build()
	require.Equal(t, v1, version)
	p.commit(2)
	version, fromCommit := build("--commit-hash", v1[:10])
	require.Equal(t, v1, version)
	require.Equal(t, clean, fromCommit, "the same commit gives the same digest, working tree or --commit-hash")

	errOut, code := p.fail("build", "--commit-hash", "0000000000")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "--commit-hash")
}
