package worker_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/worker"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/distributive-flow/dflow/worker/devserver"
	"github.com/distributive-flow/dflow/workflows"
	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
)

var record = flag.Bool("record", false, "write the histories of this test's workflows to ../workflows/testdata for the replay test")

// TestMain doubles as the node agent (the local backend starts this test
// binary with DFLOW_TEST_AGENT=1).
func TestMain(m *testing.M) {
	testsuite.ServeAgentIfAsked()
	flag.Parse()
	os.Exit(m.Run())
}

// TestProvisionOnARealServer runs the Provision workflow on the embedded
// Temporal with the real local backend and embedded store.
func TestProvisionOnARealServer(t *testing.T) {
	ctx := context.Background()
	project := t.TempDir()
	cfg := deploy.Default(project)
	cfg.Name = "itest"
	srv, err := devserver.New(devserver.Options{Dir: cfg.StateDir(), FrontendPort: -1, UIPort: -1})
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	defer srv.Stop(ctx)
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress()})
	require.NoError(t, err)
	defer c.Close()
	env := worker.Env{AgentCommand: testsuite.AgentCommand()}
	w := worker.New(c, "itest", env)
	require.NoError(t, w.Start())
	defer w.Stop()
	t.Cleanup(func() {
		b, err := worker.Open(ctx, cfg, env)
		if err != nil {
			return
		}
		defer b.Close()
		nodes, _ := b.VM.List(ctx)
		for _, n := range nodes {
			_ = b.VM.Destroy(ctx, n)
		}
	})

	run := func(name string, req workflows.ProvisionRequest) workflows.ProvisionResult {
		t.Helper()
		req.Config = cfg
		r, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "itest-" + name, TaskQueue: "itest"}, workflows.Provision, req)
		require.NoError(t, err)
		var res workflows.ProvisionResult
		require.NoError(t, r.Get(ctx, &res))
		if *record {
			writeHistory(t, c, r.GetID(), r.GetRunID(), filepath.Join("..", "workflows", "testdata", "provision-"+name+".json"))
		}
		return res
	}
	live := func() []int {
		b, err := worker.Open(ctx, cfg, env)
		require.NoError(t, err)
		defer b.Close()
		nodes, err := b.VM.List(ctx)
		require.NoError(t, err)
		st, err := b.Store.Load(ctx)
		require.NoError(t, err)
		out := []int{}
		for i, n := range nodes {
			require.Equal(t, st.Nodes[i], n, "the store agrees with what runs")
			out = append(out, n.Index)
		}
		require.Len(t, st.Nodes, len(nodes))
		return out
	}

	res := run("set-3", workflows.ProvisionRequest{Op: workflows.OpSet, Count: 3})
	require.Len(t, res.Created, 3)
	require.Equal(t, []int{0, 1, 2}, live())
	res = run("cycle-1", workflows.ProvisionRequest{Op: workflows.OpCycle, Index: 1})
	require.Len(t, res.Created, 1)
	require.Equal(t, []int{0, 1, 2}, live())
	run("destroy-2", workflows.ProvisionRequest{Op: workflows.OpDestroy, Index: 2})
	require.Equal(t, []int{0, 1}, live())
	run("set-0", workflows.ProvisionRequest{Op: workflows.OpSet, Count: 0})
	require.Equal(t, []int{}, live())
}

func writeHistory(t *testing.T, c client.Client, id, runID, path string) {
	t.Helper()
	var h historypb.History
	it := c.GetWorkflowHistory(context.Background(), id, runID, false, 0)
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, e)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&h)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o644))
}
