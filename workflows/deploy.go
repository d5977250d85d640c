package workflows

import (
	"errors"
	"fmt"
	"time"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/agent"
	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// DeployRequest asks to roll a version out to every node: a new build
// (Kind deploy), an earlier release (rollback), the current release again
// through the switch (restart), or the current release where it does not
// run (start).
type DeployRequest struct {
	Config deploy.Config `json:"config"`
	Kind   string        `json:"kind"`
	// Version picks the release a rollback goes back to ("" = the previous).
	Version string `json:"version,omitempty"`
	// BuildEnv is added to the build tools' environment (CABAL_DIR, ...).
	BuildEnv []string `json:"build_env,omitempty"`
	// Who asked (user@host), for the release record.
	Who string `json:"who"`
}

// NodeOutcome is what a rollout did on one node.
type NodeOutcome struct {
	Index    int    `json:"index"`
	Address  string `json:"address"`
	Previous string `json:"previous,omitempty"` // instance that served before
	Serving  string `json:"serving"`            // instance that serves now
	Sent     int64  `json:"sent"`               // bytes copied to the node
}

// DeployResult is what a rollout did.
type DeployResult struct {
	Release deploy.Release `json:"release"`
	Nodes   []NodeOutcome  `json:"nodes"`
}

// Deploy builds (for Kind deploy) or picks the release to ship, records it,
// copies the bundle to every node, and then, in batches of deploy.parallel
// nodes, starts the new version beside the old one, waits for its readiness
// gate, switches the node's public port to it and drains and stops the old
// one. A node whose new version fails the gate keeps serving the old one and
// the rollout stops there with the node, the probe and the new version's
// last log lines. Every step is idempotent, so a crash of the worker or the
// control plane resumes the rollout where it stopped.
func Deploy(ctx workflow.Context, req DeployRequest) (DeployResult, error) {
	var res DeployResult
	t, err := newTracker(ctx, req.Kind)
	if err != nil {
		return res, err
	}
	cfg := req.Config
	nctx := nodeOptions(ctx)

	// The nodes first: a cluster with none fails before anything is built.
	var nodes []deploy.Node
	if err := workflow.ExecuteActivity(nctx, acts.Nodes, cfg).Get(ctx, &nodes); err != nil {
		return res, failed(req.Kind, err)
	}

	var rel deploy.Release
	of := 0
	switch req.Kind {
	case deploy.ReleaseDeploy:
		t.step(ctx, "build", 1)
		t.event(ctx, -1, "building %s (log: %s)", cfg.PackagePath(), activities.BuildLog(cfg))
		var target deploy.Target
		if err := workflow.ExecuteActivity(buildOptions(ctx), acts.Build, cfg, req.BuildEnv).Get(ctx, &target); err != nil {
			return res, failed("build", err)
		}
		t.done(ctx)
		t.event(ctx, -1, "built %s %s: digest %s, %s, in %.1fs", target.Package, deploy.ShortVersion(target.Version), target.Digest[:12], deploy.HumanBytes(target.Size), target.BuildSeconds)
		rel = deploy.Release{Version: target.Version, Digest: target.Digest, Target: target}
	case deploy.ReleaseRollback, deploy.ReleaseRestart, deploy.ReleaseStart:
		t.step(ctx, "pick", 0)
		var picked deploy.Release
		if err := workflow.ExecuteActivity(nctx, acts.PickTarget, cfg, activities.Pick{Kind: req.Kind, Version: req.Version}).Get(ctx, &picked); err != nil {
			return res, failed(req.Kind, err)
		}
		if req.Kind == deploy.ReleaseRollback {
			of = picked.ID
			t.event(ctx, -1, "rolling back to release %d: version %s", picked.ID, deploy.ShortVersion(picked.Version))
		}
		rel = deploy.Release{Version: picked.Version, Digest: picked.Digest, Target: picked.Target}
	default:
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("unknown deploy kind %q", req.Kind), activities.ErrBadInput, nil)
	}

	info := workflow.GetInfo(ctx)
	rel.Kind, rel.Config, rel.Who, rel.Of = req.Kind, cfg, req.Who, of
	rel.Workflow = info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID
	rel.At = workflow.Now(ctx).UTC()
	if err := workflow.ExecuteActivity(nctx, acts.BeginRelease, cfg, rel).Get(ctx, &rel); err != nil {
		return res, failed("record the release", err)
	}
	res.Release = rel
	t.event(ctx, -1, "release %d: %s of version %s to %d nodes", rel.ID, rel.Kind, deploy.ShortVersion(rel.Version), len(nodes))

	outcomes, err := rollout(ctx, t, cfg, rel, nodes)
	res.Nodes = outcomes
	finish := activities.Finish{ID: rel.ID, Outcome: deploy.OutcomeSucceeded}
	for _, o := range outcomes {
		if o.Serving == rel.InstanceID() {
			finish.Nodes = append(finish.Nodes, o.Index)
		}
	}
	if err != nil {
		finish.Outcome, finish.Error = deploy.OutcomeFailed, err.Error()
	} else {
		switch req.Kind {
		case deploy.ReleaseDeploy:
			finish.Current = rel.ID
		case deploy.ReleaseRollback:
			finish.Current = of
		}
	}
	// Record the outcome even when the workflow was cancelled.
	dctx, _ := workflow.NewDisconnectedContext(nctx)
	if ferr := workflow.ExecuteActivity(dctx, acts.FinishRelease, cfg, finish).Get(dctx, nil); ferr != nil && err == nil {
		err = failed(fmt.Sprintf("record the outcome of release %d", rel.ID), ferr)
	}
	res.Release.Outcome = finish.Outcome
	if err != nil {
		return res, err
	}
	t.step(ctx, "done", 0)
	return res, nil
}

// rollout copies rel to every node and switches them, batch by batch.
func rollout(ctx workflow.Context, t *tracker, cfg deploy.Config, rel deploy.Release, nodes []deploy.Node) ([]NodeOutcome, error) {
	out := make([]NodeOutcome, len(nodes))
	for i, n := range nodes {
		out[i] = NodeOutcome{Index: n.Index, Address: n.Address}
	}
	t.step(ctx, "copy", len(nodes))
	err := forEach(ctx, len(nodes), cfg.Nodes.Parallel, func(ctx workflow.Context, i int) error {
		n := nodes[i]
		var cr activities.CopyResult
		if err := workflow.ExecuteActivity(copyOptions(ctx), acts.CopyToNode, cfg, n, rel.Target, false).Get(ctx, &cr); err != nil {
			return failed(fmt.Sprintf("copy to node %d", n.Index), err)
		}
		out[i].Sent = cr.Sent
		t.done(ctx)
		if cr.Skipped {
			t.event(ctx, n.Index, "node %d has %s already: 0 bytes sent", n.Index, rel.Digest[:12])
		} else {
			t.event(ctx, n.Index, "node %d: %s copied and verified", n.Index, deploy.HumanBytes(cr.Sent))
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	t.step(ctx, "switch", len(nodes))
	pos := map[int]int{}
	for i, n := range nodes {
		pos[n.Index] = i
	}
	for _, batch := range deploy.Batches(nodes, cfg.Deploy.Parallel) {
		err := forEach(ctx, len(batch), len(batch), func(ctx workflow.Context, j int) error {
			n := batch[j]
			o, err := switchNode(ctx, t, cfg, rel, n)
			o.Sent, o.Address = out[pos[n.Index]].Sent, n.Address
			out[pos[n.Index]] = o
			if err != nil {
				return err
			}
			t.done(ctx)
			return nil
		})
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// switchNode moves node n to release rel: start beside the old version,
// gate, switch, drain and stop the old (in restart mode: stop the old first).
func switchNode(ctx workflow.Context, t *tracker, cfg deploy.Config, rel deploy.Release, n deploy.Node) (NodeOutcome, error) {
	o := NodeOutcome{Index: n.Index}
	nctx := nodeStepOptions(ctx, cfg)
	id := rel.InstanceID()
	var list agent.ProcessList
	if err := workflow.ExecuteActivity(nctx, acts.NodeProcesses, cfg, n).Get(ctx, &list); err != nil {
		return o, failed(fmt.Sprintf("node %d", n.Index), err)
	}
	o.Previous, o.Serving = list.Serving, list.Serving
	var others []string
	for _, p := range list.Processes {
		if p.ID != id && p.Alive() {
			others = append(others, p.ID)
		}
	}
	stopOthers := func() error {
		for _, old := range others {
			t.event(ctx, n.Index, "node %d: draining and stopping %s", n.Index, old)
			if err := workflow.ExecuteActivity(nctx, acts.StopOnNode, cfg, n, old, false).Get(ctx, nil); err != nil {
				return failed(fmt.Sprintf("node %d", n.Index), err)
			}
		}
		return nil
	}
	if cfg.App.Mode == deploy.ModeRestart {
		if err := stopOthers(); err != nil {
			return o, err
		}
		o.Serving = ""
	}
	t.event(ctx, n.Index, "node %d: starting %s", n.Index, id)
	if err := workflow.ExecuteActivity(nctx, acts.StartOnNode, cfg, n, rel).Get(ctx, nil); err != nil {
		return o, failed("deploy stopped", err)
	}
	t.event(ctx, n.Index, "node %d: %s is ready; switching", n.Index, id)
	if err := workflow.ExecuteActivity(nctx, acts.SwitchOnNode, cfg, n, id).Get(ctx, nil); err != nil {
		return o, failed(fmt.Sprintf("node %d", n.Index), err)
	}
	o.Serving = id
	if cfg.App.Mode != deploy.ModeRestart {
		if err := stopOthers(); err != nil {
			return o, err
		}
	}
	t.event(ctx, n.Index, "node %d serves %s", n.Index, deploy.ShortVersion(rel.Version))
	return o, nil
}

// failed puts context before an activity's error and keeps what the user
// needs: the application error's own message (not Temporal's wrapping of
// it, which repeats it) and its type, for the CLI's exit code.
func failed(context string, err error) error {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return temporal.NewApplicationErrorWithOptions(context+": "+app.Message(), app.Type(), temporal.ApplicationErrorOptions{NonRetryable: true})
	}
	return fmt.Errorf("%s: %w", context, err)
}

// forEach runs f(0..n-1) with at most parallel running at once and returns
// the first error (after the running ones finish).
func forEach(ctx workflow.Context, n, parallel int, f func(ctx workflow.Context, i int) error) error {
	if parallel < 1 {
		parallel = 1
	}
	var first error
	for start := 0; start < n; start += parallel {
		end := min(start+parallel, n)
		wg := workflow.NewWaitGroup(ctx)
		for i := start; i < end; i++ {
			wg.Add(1)
			workflow.Go(ctx, func(ctx workflow.Context) {
				defer wg.Done()
				if err := f(ctx, i); err != nil && first == nil {
					first = err
				}
			})
		}
		wg.Wait(ctx)
		if first != nil {
			return first
		}
	}
	return nil
}

// buildOptions: a build may take long (a cold GHC build of a big project)
// but heartbeats every second; a failed build is not retried.
func buildOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Hour,
		HeartbeatTimeout:    10 * activities.HeartbeatEvery,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			MaximumAttempts:        3,
			NonRetryableErrorTypes: []string{activities.ErrBadInput, activities.ErrBuildFailed},
		},
	})
}

// copyOptions: copying a large bundle over a slow link takes a while.
func copyOptions(ctx workflow.Context) workflow.Context {
	return stepOptions(ctx, 30*time.Minute, activities.ErrBadInput)
}

// nodeStepOptions: a start waits for the readiness gate and a stop for the
// drain and the grace period, so their bound follows the app's settings.
func nodeStepOptions(ctx workflow.Context, cfg deploy.Config) workflow.Context {
	bound := cfg.App.ReadyTimeout.D() + cfg.App.DrainTimeout.D() + cfg.App.StopGrace.D() + 2*time.Minute
	return stepOptions(ctx, bound, activities.ErrBadInput, activities.ErrGateFailed)
}
