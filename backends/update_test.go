package backends_test

import (
	"context"
	"errors"
	"testing"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
)

// racingStore is a MemStore where another writer saves before each of the
// first `races` Saves.
type racingStore struct {
	testsuite.MemStore
	races int
	saves int
}

func (s *racingStore) Save(ctx context.Context, st deploy.State) error {
	s.saves++
	if s.races > 0 {
		s.races--
		other, err := s.MemStore.Load(ctx)
		if err != nil {
			return err
		}
		other.Count += 100
		if err := s.MemStore.Save(ctx, other); err != nil {
			return err
		}
	}
	return s.MemStore.Save(ctx, st)
}

func TestUpdateRetriesOnConflict(t *testing.T) {
	ctx := context.Background()
	s := &racingStore{MemStore: testsuite.NewMemStore(), races: 2}
	calls := 0
	require.NoError(t, backends.Update(ctx, s, func(st *deploy.State) bool {
		calls++
		st.Count++
		return true
	}))
	require.Equal(t, 3, calls, "f runs again on each fresh state")
	st, err := s.Load(ctx)
	require.NoError(t, err)
	require.Equal(t, 201, st.Count, "the other writer's updates are kept")
}

func TestUpdateSavesNothingWhenFSaysSo(t *testing.T) {
	ctx := context.Background()
	s := &racingStore{MemStore: testsuite.NewMemStore()}
	require.NoError(t, backends.Update(ctx, s, func(st *deploy.State) bool { st.Count = 7; return false }))
	require.Zero(t, s.saves)
	st, err := s.Load(ctx)
	require.NoError(t, err)
	require.Zero(t, st.Count)
	require.Zero(t, st.Revision)
}

// failingStore's Save fails with err.
type failingStore struct {
	testsuite.MemStore
	err error
}

func (s failingStore) Save(ctx context.Context, st deploy.State) error { return s.err }

func TestUpdateGivesUp(t *testing.T) {
	broken := errors.New("disk on fire")
	err := backends.Update(context.Background(), failingStore{testsuite.NewMemStore(), broken}, func(*deploy.State) bool { return true })
	require.ErrorIs(t, err, broken, "an error other than a conflict is not retried")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = backends.Update(ctx, failingStore{testsuite.NewMemStore(), backends.ErrConflict}, func(*deploy.State) bool { return true })
	require.ErrorIs(t, err, context.Canceled, "conflicts are retried until ctx ends")
}
