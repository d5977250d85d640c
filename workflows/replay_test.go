package workflows_test

import (
	"path/filepath"
	"testing"

	"github.com/distributive-flow/dflow/workflows"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
)

// TestReplay replays recorded histories (workflows/testdata, written by
// `go test ./worker -run 'OnARealServer' -record`): a change to a
// workflow that breaks determinism for running workflows fails here.
// Histories recorded before a versioned change (workflow.GetVersion) are
// kept in a folder named for it, and must replay too.
func TestReplay(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded histories")
	older, err := filepath.Glob("testdata/*/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, older, "no histories from before node-steps-2")
	files = append(files, older...)
	r := worker.NewWorkflowReplayer()
	workflows.Register(r)
	for _, f := range files {
		name, _ := filepath.Rel("testdata", f)
		t.Run(name, func(t *testing.T) {
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}
