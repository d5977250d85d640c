package testsuite

import (
	"context"
	"testing"
	"time"

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
	// Remains lists what the backend holds for the node at index, running
	// or not (containers, directories, machines, agent processes), by a
	// name for the failure message; nothing when the index is clean. Nil
	// skips the cases that need it.
	Remains func(t *testing.T, index int) []string
	// CutShort, when set, says why a create cut short by its context may
	// leave remains (an exec plugin is killed: it cannot clean up); the
	// case that checks it is then skipped.
	CutShort string
	// Images are two images nodes can be made from (NodeSpec.Image); ""
	// for a backend that has one kind of node only.
	Images [2]string
}

// VMSuite is the conformance suite every VMBackend passes. open returns a
// fresh, empty backend.
func VMSuite(t *testing.T, open func(t *testing.T) VMHarness) {
	ctx := context.Background()
	spec := func(h VMHarness, i int) deploy.NodeSpec { return deploy.NodeSpec{Index: i, Keys: h.Keys} }
	// badKeys makes every agent refuse to start: it holds no keys.
	const badKeys = "# no keys at all\n"
	remains := func(t *testing.T, h VMHarness) {
		t.Helper()
		if h.Remains == nil {
			t.Skip("the harness cannot tell what a node leaves behind (no Remains)")
		}
	}
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
	t.Run("a create that fails leaves nothing behind", func(t *testing.T) {
		h := open(t)
		remains(t, h)
		_, err := h.Backend.Create(ctx, deploy.NodeSpec{Index: 0, Image: h.Images[0], Keys: badKeys})
		require.Error(t, err, "an agent without keys cannot start")
		require.Empty(t, h.Remains(t, 0), "what the failed create made is gone")
		require.Equal(t, []int{}, list(t, h))
		if rl, ok := h.Backend.(backends.RemainsLister); ok {
			got, err := rl.Remains(ctx)
			require.NoError(t, err)
			require.Equal(t, []int{}, got)
		}
	})
	t.Run("a create cut short by its context leaves nothing behind", func(t *testing.T) {
		h := open(t)
		remains(t, h)
		if h.CutShort != "" {
			t.Skip(h.CutShort)
		}
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if _, err := h.Backend.Create(cctx, deploy.NodeSpec{Index: 0, Image: h.Images[0], Keys: h.Keys}); err == nil {
			t.Skip("the node was up within 300ms: nothing was cut short")
		}
		require.Empty(t, h.Remains(t, 0), "what the cut-short create made is gone")
		require.Equal(t, []int{}, list(t, h))
	})
	t.Run("a retry after a failed create takes the image and keys it is given", func(t *testing.T) {
		h := open(t)
		_, err := h.Backend.Create(ctx, deploy.NodeSpec{Index: 0, Image: h.Images[0], Keys: badKeys})
		require.Error(t, err)
		n, err := h.Backend.Create(ctx, deploy.NodeSpec{Index: 0, Image: h.Images[1], Keys: h.Keys})
		require.NoError(t, err, "the retry's keys, not the failed attempt's")
		require.Equal(t, h.Images[1], n.Image, "the retry's image, not the failed attempt's")
		require.Equal(t, []int{0}, list(t, h))
	})
	t.Run("destroy by index removes a dead node's remains", func(t *testing.T) {
		h := open(t)
		remains(t, h)
		rl, lists := h.Backend.(backends.RemainsLister)
		n, err := h.Backend.Create(ctx, spec(h, 0))
		require.NoError(t, err)
		h.Kill(t, n)
		if lists {
			got, err := rl.Remains(ctx)
			require.NoError(t, err)
			require.Equal(t, []int{0}, got, "a dead node, which List leaves out, is among the remains")
		}
		require.NoError(t, h.Backend.Destroy(ctx, deploy.Node{Index: 0}))
		require.Empty(t, h.Remains(t, 0))
		if lists {
			got, err := rl.Remains(ctx)
			require.NoError(t, err)
			require.Equal(t, []int{}, got)
		}
	})
}
