package testsuite

import (
	"context"
	"testing"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/stretchr/testify/require"
)

// VMHarness is a VM backend under test and what the suite needs besides it.
type VMHarness struct {
	Backend backends.VMBackend
	// Keys is the authorized_keys content to create nodes with.
	Keys string
	// Kill makes the node die behind the backend's back (kill -9 its agent).
	Kill func(t *testing.T, n deploy.Node)
}

// VMSuite is the conformance suite every VMBackend passes. open returns a
// fresh, empty backend.
func VMSuite(t *testing.T, open func(t *testing.T) VMHarness) {
	ctx := context.Background()
	spec := func(h VMHarness, i int) deploy.NodeSpec { return deploy.NodeSpec{Index: i, Keys: h.Keys} }
	list := func(t *testing.T, h VMHarness) []int {
		ns, err := h.Backend.List(ctx)
		require.NoError(t, err)
		out := []int{}
		for _, n := range ns {
			out = append(out, n.Index)
		}
		return out
	}

	t.Run("empty lists nothing", func(t *testing.T) {
		h := open(t)
		require.Equal(t, []int{}, list(t, h))
	})
	t.Run("create is idempotent per index", func(t *testing.T) {
		h := open(t)
		a, err := h.Backend.Create(ctx, spec(h, 0))
		require.NoError(t, err)
		require.Equal(t, 0, a.Index)
		require.NotEmpty(t, a.ID)
		require.NotEmpty(t, a.Address)
		b, err := h.Backend.Create(ctx, spec(h, 0))
		require.NoError(t, err)
		require.Equal(t, a, b)
		require.Equal(t, []int{0}, list(t, h))
	})
	t.Run("nodes have distinct addresses and are listed sorted", func(t *testing.T) {
		h := open(t)
		seen := map[string]bool{}
		for _, i := range []int{2, 0, 1} {
			n, err := h.Backend.Create(ctx, spec(h, i))
			require.NoError(t, err)
			require.False(t, seen[n.Address], "address %s used twice", n.Address)
			seen[n.Address] = true
		}
		require.Equal(t, []int{0, 1, 2}, list(t, h))
	})
	t.Run("a killed node is not listed and create brings it back at its address", func(t *testing.T) {
		h := open(t)
		n, err := h.Backend.Create(ctx, spec(h, 0))
		require.NoError(t, err)
		h.Kill(t, n)
		require.Equal(t, []int{}, list(t, h))
		m, err := h.Backend.Create(ctx, spec(h, 0))
		require.NoError(t, err)
		require.Equal(t, n.Address, m.Address)
		require.Equal(t, []int{0}, list(t, h))
	})
	t.Run("destroy is idempotent", func(t *testing.T) {
		h := open(t)
		n, err := h.Backend.Create(ctx, spec(h, 0))
		require.NoError(t, err)
		require.NoError(t, h.Backend.Destroy(ctx, n))
		require.Equal(t, []int{}, list(t, h))
		require.NoError(t, h.Backend.Destroy(ctx, n))
		require.NoError(t, h.Backend.Destroy(ctx, deploy.Node{Index: 9}))
	})
	t.Run("destroy of an old incarnation leaves the new one", func(t *testing.T) {
		h := open(t)
		old, err := h.Backend.Create(ctx, spec(h, 0))
		require.NoError(t, err)
		require.NoError(t, h.Backend.Destroy(ctx, old))
		cur, err := h.Backend.Create(ctx, spec(h, 0))
		require.NoError(t, err)
		require.NotEqual(t, old.ID, cur.ID)
		require.NoError(t, h.Backend.Destroy(ctx, old), "the old one is gone already")
		require.Equal(t, []int{0}, list(t, h))
		require.NoError(t, h.Backend.Destroy(ctx, deploy.Node{Index: 0}), "an empty ID names whatever is there")
		require.Equal(t, []int{}, list(t, h))
	})
}
