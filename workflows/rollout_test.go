package workflows_test

import (
	"testing"
	"time"

	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/workflows"
	"github.com/stretchr/testify/require"
)

func TestCanaryThenComplete(t *testing.T) {
	f := newFleet(t, 3)
	_, err := f.deploy(t, deploy.ReleaseDeploy, "v1", f.cfg)
	require.NoError(t, err)

	f.builder.version = "v2"
	var res workflows.DeployResult
	require.NoError(t, f.run(t, workflows.Deploy, workflows.DeployRequest{Config: f.cfg, Kind: deploy.ReleaseDeploy, RolloutPercent: 34}, &res))
	require.Equal(t, []string{"v2", "v2", "v1"}, f.serving(t), "34% of 3 nodes is 2")

	// A plain deploy completes it, leaving the two canaries as they are.
	require.NoError(t, f.run(t, workflows.Deploy, workflows.DeployRequest{Config: f.cfg, Kind: deploy.ReleaseDeploy}, &res))
	require.Equal(t, all("v2", 3), f.serving(t))
	skipped := 0
	for _, o := range res.Nodes {
		if o.Skipped {
			skipped++
		}
	}
	require.Equal(t, 2, skipped, "the canaries were not switched again")

	// Rollback covers a canary too.
	require.NoError(t, f.run(t, workflows.Deploy, workflows.DeployRequest{Config: f.cfg, Kind: deploy.ReleaseDeploy, RolloutPercent: 50}, &res))
	_, err = f.deploy(t, deploy.ReleaseRollback, "", f.cfg)
	require.NoError(t, err)
	require.Equal(t, all("v1", 3), f.serving(t))
}

func TestRollingTimedSpreadsBatchesEvenly(t *testing.T) {
	f := newFleet(t, 3)
	_, err := f.deploy(t, deploy.ReleaseDeploy, "v1", f.cfg)
	require.NoError(t, err)
	f.builder.version = "v2"
	var res workflows.DeployResult
	// The test environment skips the timers: a minute passes in an instant.
	require.NoError(t, f.run(t, workflows.Deploy, workflows.DeployRequest{Config: f.cfg, Kind: deploy.ReleaseDeploy, RollingTimed: time.Minute}, &res))
	require.Equal(t, all("v2", 3), f.serving(t))
	first := res.Nodes[0].SwitchedAt
	for i, want := range []time.Duration{0, 30 * time.Second, 60 * time.Second} {
		got := res.Nodes[i].SwitchedAt.Sub(first)
		require.InDelta(t, want.Seconds(), got.Seconds(), 5, "node %d switched at +%s, want +%s", i, got, want)
	}
}

func TestAutoRolloutGoesBack(t *testing.T) {
	f := newFleet(t, 3)
	_, err := f.deploy(t, deploy.ReleaseDeploy, "good", f.cfg)
	require.NoError(t, err)

	// "bad" passes its readiness gate (3 good probes), then /health fails.
	bad := f.cfg
	bad.App.Env = append([]string{"DFLOW_FAKE_HEALTHY_FOR=3"}, f.cfg.App.Env...)
	f.builder.version = "bad"
	var res workflows.DeployResult
	err = f.run(t, workflows.Deploy, workflows.DeployRequest{Config: bad, Kind: deploy.ReleaseDeploy, AutoRollout: true, Tolerance: 10}, &res)
	require.ErrorContains(t, err, "auto-rollout: health 0.0 after the switch against a baseline of 100.0")
	require.ErrorContains(t, err, "went back to version good")
	require.Equal(t, all("good", 3), f.serving(t))

	st := f.state(t)
	var kinds []string
	for _, r := range st.Releases {
		kinds = append(kinds, r.Kind+":"+r.Version+":"+r.Outcome)
	}
	require.Equal(t, []string{"deploy:good:succeeded", "deploy:bad:failed", "rollback:good:succeeded"}, kinds)
	cur, _ := st.CurrentRelease()
	require.Equal(t, "good", cur.Version)
	require.NotEmpty(t, st.Health, "verify's verdicts are recorded")

	// Within tolerance, the same drop passes.
	f.builder.version = "meh"
	meh := f.cfg
	meh.App.Env = append([]string{"DFLOW_FAKE_HEALTHY_FOR=1000"}, f.cfg.App.Env...)
	require.NoError(t, f.run(t, workflows.Deploy, workflows.DeployRequest{Config: meh, Kind: deploy.ReleaseDeploy, AutoRollout: true, Tolerance: 10}, &res))
	require.Equal(t, all("meh", 3), f.serving(t))
}

func TestPauseResumeAbort(t *testing.T) {
	f := newFleet(t, 3)
	_, err := f.deploy(t, deploy.ReleaseDeploy, "v1", f.cfg)
	require.NoError(t, err)
	f.builder.version = "v2"

	// Paused before its second batch, then aborted: the first node stays
	// on v2, the others on v1, and the release failed as aborted.
	env := f.env(t)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflowNoRejection(workflows.UpdatePause, "p1", t, "tester")
	}, 10*time.Second)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflowNoRejection(workflows.UpdateAbort, "a1", t, "tester")
	}, 40*time.Second)
	env.ExecuteWorkflow(workflows.Deploy, f.saved(t, workflows.DeployRequest{Config: f.cfg, Kind: deploy.ReleaseDeploy, RollingTimed: 40 * time.Second}))
	require.True(t, env.IsWorkflowCompleted())
	require.ErrorContains(t, env.GetWorkflowError(), "aborted before batch 2 of 3")
	require.Equal(t, []string{"v2", "v1", "v1"}, f.serving(t))
}

// TestPauseAbortWindow: a plain rollout (no timed schedule, no
// auto-rollout) honours pause and abort before each node's turn.
func TestPauseAbortWindow(t *testing.T) {
	f := newFleet(t, 3)
	_, err := f.deploy(t, deploy.ReleaseDeploy, "v1", f.cfg)
	require.NoError(t, err)
	f.builder.version = "v2"

	env := f.env(t)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflowNoRejection(workflows.UpdatePause, "p1", t, "tester")
	}, 0)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflowNoRejection(workflows.UpdateAbort, "a1", t, "tester")
	}, time.Hour)
	env.ExecuteWorkflow(workflows.Deploy, f.saved(t, workflows.DeployRequest{Config: f.cfg, Kind: deploy.ReleaseDeploy}))
	require.True(t, env.IsWorkflowCompleted())
	require.ErrorContains(t, env.GetWorkflowError(), "aborted after 0 of 3 nodes")
	require.Equal(t, all("v1", 3), f.serving(t))
}
