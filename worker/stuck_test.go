package worker_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/distributive-flow/dflow/worker"
	"github.com/distributive-flow/dflow/workflows"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
)

// TestStuckDeployOnARealServer runs deploys whose copy to a node with a
// killed agent gets stuck, on the embedded Temporal with the real backends,
// and records their histories for the replay test: one decided by the
// Updates retry (stuck again: the agent is still gone) then skip-node, one
// left unattended until deploy.stuck_timeout aborts it.
func TestStuckDeployOnARealServer(t *testing.T) {
	testsuite.RequireCabal(t)
	ctx := context.Background()
	project := testsuite.HelloRepo(t, testsuite.Example(t, "hello"))
	cfg := deploy.Default(project)
	cfg.Name, cfg.Package = "stest", "hello.cabal"
	cfg.App.Port = 19000 + os.Getpid()%1000
	cfg.App.DrainTimeout = deploy.Duration(2 * time.Second)
	buildEnv := []string{"CABAL_DIR=" + testsuite.CabalDir(t)}
	require.NoError(t, worker.RecordConfig(ctx, &cfg))
	c, _ := controlPlane(t, cfg, "stest")
	start := func(name string, wf any, req any) client.WorkflowRun {
		t.Helper()
		r, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "stest-" + name, TaskQueue: "stest"}, wf, req)
		require.NoError(t, err)
		return r
	}
	save := func(r client.WorkflowRun, name string) {
		t.Helper()
		if *record {
			writeHistory(t, c, r.GetID(), r.GetRunID(), filepath.Join("..", "workflows", "testdata", name+".json"))
		}
	}
	var pres workflows.ProvisionResult
	require.NoError(t, start("setup", workflows.Provision, workflows.ProvisionRequest{Config: cfg, Op: workflows.OpSet, Count: 2}).Get(ctx, &pres))
	var res workflows.DeployResult
	require.NoError(t, start("deploy", workflows.Deploy, workflows.DeployRequest{Config: cfg, Kind: deploy.ReleaseDeploy, BuildEnv: buildEnv, Who: "test"}).Get(ctx, &res))

	pid := testsuite.AgentPID(t, filepath.Join(cfg.StateDir(), "nodes", "1"))
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))

	// stuckOn waits until the run's progress shows node 1 stuck (a copy
	// fails after five attempts, ~15 s of backoff).
	stuckOn := func(r client.WorkflowRun) {
		t.Helper()
		require.Eventually(t, func() bool {
			v, err := c.QueryWorkflow(ctx, r.GetID(), r.GetRunID(), workflows.QueryProgress)
			if err != nil {
				return false
			}
			var p deploy.Progress
			return v.Get(&p) == nil && len(p.Stuck) == 1 && p.Stuck[0].Node == 1
		}, 2*time.Minute, 200*time.Millisecond)
	}
	decide := func(r client.WorkflowRun, name string, arg any) {
		t.Helper()
		h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: r.GetID(), RunID: r.GetRunID(), UpdateName: name, Args: []any{arg},
			WaitForStage: client.WorkflowUpdateStageCompleted})
		require.NoError(t, err)
		require.NoError(t, h.Get(ctx, nil))
	}

	// A restart (nothing to build) of the current release: retry, stuck
	// again, skip-node.
	r := start("deploy-stuck-skip", workflows.Deploy, workflows.DeployRequest{Config: cfg, Kind: deploy.ReleaseRestart, Who: "test"})
	stuckOn(r)
	decide(r, workflows.UpdateRetry, "test")
	time.Sleep(time.Second) // the retry's attempts are under way
	stuckOn(r)
	one := 1
	decide(r, workflows.UpdateSkipNode, workflows.SkipNode{Node: &one, Who: "test"})
	require.NoError(t, r.Get(ctx, &res))
	require.NotEmpty(t, res.Nodes[1].LeftOut)
	save(r, "deploy-stuck-skip")

	// Unattended: deploy.stuck_timeout passes, deploy.stuck_action aborts.
	short := cfg
	short.Deploy.StuckTimeout = deploy.Duration(time.Second)
	require.NoError(t, worker.RecordConfig(ctx, &short))
	r = start("deploy-stuck-timeout", workflows.Deploy, workflows.DeployRequest{Config: short, Kind: deploy.ReleaseRestart, Who: "test"})
	err := r.Get(ctx, &res)
	require.ErrorContains(t, err, "aborted by deploy.stuck_action: copy to node 1 failed after 5 attempts")
	save(r, "deploy-stuck-timeout")
}
