package worker_test

import (
	"context"
	"testing"

	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/worker"
	"github.com/stretchr/testify/require"
)

// RecordConfig saves a configuration revision only when the configuration
// changed: recording the same one again gives its revision and leaves the
// store as it is.
func TestRecordConfigSavesOnlyAChange(t *testing.T) {
	ctx := context.Background()
	cfg := deploy.Default(t.TempDir())
	cfg.Name = "record"
	load := func() deploy.State {
		st, err := worker.OpenStore(cfg)
		require.NoError(t, err)
		defer st.Close()
		s, err := st.Load(ctx)
		require.NoError(t, err)
		return s
	}

	require.NoError(t, worker.RecordConfig(ctx, &cfg))
	require.EqualValues(t, 1, cfg.Revision)
	saved := load().Revision

	again := cfg
	require.NoError(t, worker.RecordConfig(ctx, &again))
	require.EqualValues(t, 1, again.Revision)
	require.Equal(t, saved, load().Revision, "nothing was saved")

	changed := cfg
	changed.App.Env = []string{"GREETING=hi"}
	require.NoError(t, worker.RecordConfig(ctx, &changed))
	require.EqualValues(t, 2, changed.Revision)
	s := load()
	require.Equal(t, saved+1, s.Revision)
	require.Len(t, s.Configs, 2)
}
