package workflows

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

// forEachProbe runs forEach over items that each sleep their duration and
// returns when each one started, in seconds from the start (-1: never),
// and forEach's error; an item whose duration is negative fails after
// -duration.
func forEachProbe(ctx workflow.Context, parallel int, durations []time.Duration) (probeResult, error) {
	t0 := workflow.Now(ctx)
	started := make([]float64, len(durations))
	for i := range started {
		started[i] = -1
	}
	err := decideNodeSteps(ctx).forEach(ctx, len(durations), parallel, func(ctx workflow.Context, i int) error {
		started[i] = workflow.Now(ctx).Sub(t0).Seconds()
		d := durations[i]
		if d < 0 {
			_ = workflow.Sleep(ctx, -d)
			return errors.New("failed")
		}
		return workflow.Sleep(ctx, d)
	})
	r := probeResult{Started: started}
	if err != nil {
		r.Err = err.Error()
	}
	return r, nil
}

type probeResult struct {
	Started []float64
	Err     string
}

func TestForEachSlidingWindow(t *testing.T) {
	s := time.Second
	tests := []struct {
		name      string
		parallel  int
		durations []time.Duration
		want      []float64 // start times; -1: never started
		fails     bool
	}{
		{"a slot frees, the next starts", 2, []time.Duration{10 * s, s, s, s}, []float64{0, 0, 1, 2}, false},
		{"one at a time", 1, []time.Duration{2 * s, s, s}, []float64{0, 2, 3}, false},
		{"more slots than items", 8, []time.Duration{s, s}, []float64{0, 0}, false},
		{"nothing new after an error", 2, []time.Duration{5 * s, -s, s, s}, []float64{0, 0, -1, -1}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ts testsuite.WorkflowTestSuite
			env := ts.NewTestWorkflowEnvironment()
			env.RegisterWorkflow(forEachProbe)
			env.ExecuteWorkflow(forEachProbe, tc.parallel, tc.durations)
			require.True(t, env.IsWorkflowCompleted())
			require.NoError(t, env.GetWorkflowError())
			var got probeResult
			require.NoError(t, env.GetWorkflowResult(&got))
			require.Equal(t, tc.want, got.Started)
			require.Equal(t, tc.fails, got.Err != "", got.Err)
		})
	}
}
