package testsuite

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/stretchr/testify/require"
)

// StoreSuite is the conformance suite every Store passes. open returns a
// fresh empty store; reopen returns a second, independent handle on the same
// data (another client, as another process would have).
func StoreSuite(t *testing.T, open func(t *testing.T) backends.Store, reopen func(t *testing.T, s backends.Store) backends.Store) {
	ctx := context.Background()
	node := func(i int, id string) deploy.Node {
		return deploy.Node{Index: i, ID: id, Address: "10.0.0.1", AgentURL: "http://10.0.0.1:7077", Backend: "test", Image: "img",
			CreatedAt: time.Date(2026, 11, 24, 12, 0, i, 0, time.UTC)}
	}
	indices := func(t *testing.T, s backends.Store) []int {
		st, err := s.Load(ctx)
		require.NoError(t, err)
		out := []int{}
		for _, n := range st.Nodes {
			out = append(out, n.Index)
		}
		return out
	}

	t.Run("empty store loads the zero state", func(t *testing.T) {
		st, err := open(t).Load(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(0), st.Revision)
		require.Zero(t, st.Count)
		require.Empty(t, st.Nodes)
	})
	t.Run("save round-trips and bumps the revision", func(t *testing.T) {
		s := open(t)
		st, _ := s.Load(ctx)
		st.Count = 3
		st.Nodes = []deploy.Node{node(1, "b"), node(0, "a")}
		require.NoError(t, s.Save(ctx, st))
		got, err := s.Load(ctx)
		require.NoError(t, err)
		require.Equal(t, st.Revision+1, got.Revision)
		require.Equal(t, 3, got.Count)
		require.Len(t, got.Nodes, 2)
		require.Equal(t, "a", got.Nodes[0].ID, "sorted by index")
		require.True(t, node(0, "a").CreatedAt.Equal(got.Nodes[0].CreatedAt))
		want := node(1, "b")
		gotN := got.Nodes[1]
		require.True(t, want.CreatedAt.Equal(gotN.CreatedAt))
		want.CreatedAt, gotN.CreatedAt = time.Time{}, time.Time{}
		require.Equal(t, want, gotN)
	})
	t.Run("save with a stale revision conflicts and changes nothing", func(t *testing.T) {
		s := open(t)
		st, _ := s.Load(ctx)
		st.Count = 1
		require.NoError(t, s.Save(ctx, st))
		st.Count = 2 // st.Revision is stale now
		require.ErrorIs(t, s.Save(ctx, st), backends.ErrConflict)
		got, _ := s.Load(ctx)
		require.Equal(t, 1, got.Count)
	})
	t.Run("add picks the lowest free index and fills holes", func(t *testing.T) {
		s := open(t)
		for i, id := range []string{"a", "b", "c"} {
			idx, err := s.Add(ctx, node(deploy.AutoIndex, id))
			require.NoError(t, err)
			require.Equal(t, i, idx)
		}
		require.NoError(t, s.Remove(ctx, 1, node(1, "b")))
		idx, err := s.Add(ctx, node(deploy.AutoIndex, "d"))
		require.NoError(t, err)
		require.Equal(t, 1, idx)
		require.Equal(t, []int{0, 1, 2}, indices(t, s))
	})
	t.Run("add at an index is idempotent per ID", func(t *testing.T) {
		s := open(t)
		idx, err := s.Add(ctx, node(5, "x"))
		require.NoError(t, err)
		require.Equal(t, 5, idx)
		before, _ := s.Load(ctx)
		_, err = s.Add(ctx, node(5, "x"))
		require.NoError(t, err)
		after, _ := s.Load(ctx)
		require.Equal(t, before.Revision, after.Revision, "a no-op does not write")
		_, err = s.Add(ctx, node(5, "y"))
		require.ErrorIs(t, err, backends.ErrIndexTaken)
		_, err = s.Add(ctx, node(2, "z"))
		require.NoError(t, err)
		require.Equal(t, []int{2, 5}, indices(t, s), "kept sorted")
		require.Greater(t, after.Revision, int64(0))
	})
	t.Run("remove", func(t *testing.T) {
		s := open(t)
		_, _ = s.Add(ctx, node(0, "a"))
		_, _ = s.Add(ctx, node(1, "b"))
		require.NoError(t, s.Remove(ctx, 7, node(7, "q")), "absent index")
		require.ErrorIs(t, s.Remove(ctx, 0, node(0, "other")), backends.ErrIndexTaken)
		require.Equal(t, []int{0, 1}, indices(t, s))
		require.NoError(t, s.Remove(ctx, 0, deploy.Node{}), "empty ID removes whatever is there")
		require.NoError(t, s.Remove(ctx, 1, node(1, "b")))
		require.NoError(t, s.Remove(ctx, 1, node(1, "b")), "twice")
		require.Equal(t, []int{}, indices(t, s))
	})
	t.Run("data survives reopen", func(t *testing.T) {
		s := open(t)
		_, err := s.Add(ctx, node(3, "c"))
		require.NoError(t, err)
		require.NoError(t, s.Close())
		require.Equal(t, []int{3}, indices(t, reopen(t, s)))
	})
	t.Run("two handles never lose an update", func(t *testing.T) {
		a := open(t)
		b := reopen(t, a)
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(s backends.Store) {
				defer wg.Done()
				for i := 0; i < 25; i++ {
					require.NoError(t, Increment(ctx, s))
				}
			}([]backends.Store{a, b}[g%2])
		}
		wg.Wait()
		st, _ := a.Load(ctx)
		require.Equal(t, 100, st.Count)
	})
	t.Run("concurrent auto-index adds never share an index", func(t *testing.T) {
		a := open(t)
		b := reopen(t, a)
		var wg sync.WaitGroup
		var mu sync.Mutex
		got := map[int]bool{}
		for g := 0; g < 10; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				idx, err := []backends.Store{a, b}[g%2].Add(ctx, node(deploy.AutoIndex, string(rune('a'+g))))
				require.NoError(t, err)
				mu.Lock()
				defer mu.Unlock()
				require.False(t, got[idx], "index %d handed out twice", idx)
				got[idx] = true
			}(g)
		}
		wg.Wait()
		require.Len(t, indices(t, a), 10)
	})
}

// Increment adds one to the stored Count with load-modify-save, retrying on
// conflicts: the pattern every writer uses.
func Increment(ctx context.Context, s backends.Store) error {
	for {
		st, err := s.Load(ctx)
		if err != nil {
			return err
		}
		st.Count++
		err = s.Save(ctx, st)
		if !errors.Is(err, backends.ErrConflict) {
			return err
		}
	}
}
