package loopback_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/distributive-flow/dflow/backends/internal/loopback"
	"github.com/stretchr/testify/require"
)

func TestClaimIsStableAndExclusive(t *testing.T) {
	machine := t.TempDir()
	a, b := t.TempDir(), t.TempDir()
	for _, p := range []string{a, b} {
		require.NoError(t, os.Mkdir(filepath.Join(p, ".dflow"), 0o700))
	}
	a0, err := loopback.Claim(machine, a, 0)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.2", a0, "node 0 gets the address that mirrors its index when it is free")
	again, err := loopback.Claim(machine, a, 0)
	require.NoError(t, err)
	require.Equal(t, a0, again, "a claim is stable")
	b0, err := loopback.Claim(machine, b, 0)
	require.NoError(t, err)
	require.NotEqual(t, a0, b0, "another project's node 0 gets another address")

	// A project whose .dflow is gone gives its addresses back.
	require.NoError(t, os.RemoveAll(filepath.Join(a, ".dflow")))
	c := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(c, ".dflow"), 0o700))
	c0, err := loopback.Claim(machine, c, 0)
	require.NoError(t, err)
	require.Equal(t, a0, c0, "the stale claim is reclaimed")
}

func TestReleaseGivesAFreshClaimBack(t *testing.T) {
	machine := t.TempDir()
	p := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(p, ".dflow"), 0o700))
	a, fresh, err := loopback.ClaimNew(machine, p, 3)
	require.NoError(t, err)
	require.True(t, fresh, "the first claim is made")
	again, fresh, err := loopback.ClaimNew(machine, p, 3)
	require.NoError(t, err)
	require.False(t, fresh, "the second finds it")
	require.Equal(t, a, again)
	require.NoError(t, loopback.Release(machine, p, 3))
	entries, err := os.ReadDir(filepath.Join(machine, "loopback"))
	require.NoError(t, err)
	require.Empty(t, entries, "the claim is gone")
	require.NoError(t, loopback.Release(machine, p, 3), "releasing twice is no error")
	require.NoError(t, loopback.Release(t.TempDir(), p, 3), "nor releasing in an empty registry")
}
