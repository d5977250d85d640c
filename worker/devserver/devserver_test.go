package devserver_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/worker/devserver"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

func greet(ctx workflow.Context, name string) (string, error) {
	return "hello " + name, nil
}

func start(t *testing.T, dir string, ui int) *devserver.Server {
	t.Helper()
	s, err := devserver.New(devserver.Options{Dir: dir, FrontendPort: -1, UIPort: ui})
	require.NoError(t, err)
	require.NoError(t, s.Start(context.Background()))
	return s
}

func dial(t *testing.T, s *devserver.Server) client.Client {
	c, err := client.Dial(client.Options{HostPort: s.FrontendAddress()})
	require.NoError(t, err)
	return c
}

// TestHistorySurvivesRestart runs a workflow, stops the server, starts a new
// one on the same directory, and finds the workflow's history there.
func TestHistorySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := start(t, dir, 0)
	require.NotEmpty(t, s.UIURL())
	resp, err := http.Get(s.UIURL())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the Web UI answers")

	c := dial(t, s)
	w := worker.New(c, "q", worker.Options{})
	w.RegisterWorkflow(greet)
	require.NoError(t, w.Start())
	t0 := time.Now()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "greet-1", TaskQueue: "q"}, greet, "dflow")
	require.NoError(t, err)
	var got string
	require.NoError(t, run.Get(ctx, &got))
	t.Logf("one-workflow round trip on a fresh server: %s", time.Since(t0))
	require.Equal(t, "hello dflow", got)
	w.Stop()
	c.Close()
	require.NoError(t, s.Stop(ctx))
	require.NoError(t, s.Stop(ctx), "Stop is safe twice")

	s2 := start(t, dir, -1)
	defer s2.Stop(ctx)
	c2 := dial(t, s2)
	defer c2.Close()
	d, err := c2.DescribeWorkflowExecution(ctx, "greet-1", run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, "greet", d.GetWorkflowExecutionInfo().GetType().GetName())
	var again string
	require.NoError(t, c2.GetWorkflow(ctx, "greet-1", run.GetRunID()).Get(ctx, &again))
	require.Equal(t, "hello dflow", again)
}

// TestOneOwner checks that a second server on the same directory is refused
// while the first runs.
func TestOneOwner(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := start(t, dir, -1)
	defer s.Stop(ctx)
	s2, err := devserver.New(devserver.Options{Dir: dir, FrontendPort: -1, UIPort: -1})
	require.NoError(t, err)
	err = s2.Start(ctx)
	require.ErrorIs(t, err, devserver.ErrLocked)
}
