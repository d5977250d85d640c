package workflows

import (
	"fmt"
	"time"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// DeployRequest asks to roll a version out to the nodes: a new build
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
	// CommitHash builds that commit (in a clean worktree) instead of the
	// working tree.
	CommitHash string `json:"commit_hash,omitempty"`
	// RolloutPercent switches only ceil(RolloutPercent% of the nodes): a
	// canary. 0 means all of them.
	RolloutPercent int `json:"rollout_percent,omitempty"`
	// RollingTimed spreads the batches evenly over this duration with
	// durable timers: the first batch at once, the last at RollingTimed.
	RollingTimed time.Duration `json:"rolling_timed,omitempty"`
	// AutoRollout measures the nodes' health (verify) before the rollout
	// and after every batch; when the switched nodes' health drops by more
	// than Tolerance, every node already switched goes back to the previous
	// release (also after a cancel or an abort) and the deploy fails.
	AutoRollout bool    `json:"auto_rollout,omitempty"`
	Tolerance   float64 `json:"tolerance,omitempty"`
	// SearchAttributes upserts DflowVersion (only where the server knows the
	// attribute: the embedded control plane registers it).
	SearchAttributes bool `json:"search_attributes,omitempty"`
}

// NodeOutcome is what a rollout did on one node.
type NodeOutcome struct {
	Index    int    `json:"index"`
	Address  string `json:"address"`
	Previous string `json:"previous,omitempty"` // instance that served before
	Serving  string `json:"serving"`            // instance that serves now
	Version  string `json:"version,omitempty"`  // the version it serves now
	Sent     int64  `json:"sent"`               // bytes copied to the node
	// Warning is what the agent noticed about the new instance, e.g. that
	// it listens beyond loopback (reachable around the agent's proxy).
	Warning string `json:"warning,omitempty"`
	// Skipped: the node served this release's version already.
	Skipped bool `json:"skipped,omitempty"`
	// LeftOut says why the node was left out of this rollout: one of its
	// steps was stuck and the operator (or deploy.stuck_action) decided
	// skip-node. It keeps what it ran; `dflow repair` brings it up later.
	LeftOut string `json:"left_out,omitempty"`
	// BeganAt is when the node's turn came (workflow time), SwitchedAt
	// when its public port switched.
	BeganAt    time.Time `json:"began_at,omitzero"`
	SwitchedAt time.Time `json:"switched_at,omitzero"`
}

// DeployResult is what a rollout did.
type DeployResult struct {
	Release deploy.Release `json:"release"`
	Nodes   []NodeOutcome  `json:"nodes"`
	// Health is the last auto-rollout check, when one ran.
	Health *deploy.HealthCheck `json:"health,omitempty"`
	// Compensation is the release that undid this one (auto-rollout).
	Compensation *deploy.Release `json:"compensation,omitempty"`
}

// Deploy builds (for Kind deploy) or picks the release to ship, records it,
// copies the bundle to every node, and then, on deploy.parallel nodes at a
// time, starts the new version beside the old one, waits for its readiness
// gate, switches the node's public port to it and drains and stops the old
// one. A node whose new version fails the gate keeps serving the old one and
// the rollout stops there with the node, the probe and the new version's
// last log lines. Every step is idempotent, so a crash of the worker or the
// control plane resumes the rollout where it stopped. See DeployRequest for
// canaries, timed rollouts and auto-rollout.
func Deploy(ctx workflow.Context, req DeployRequest) (DeployResult, error) {
	var res DeployResult
	t, release, err := beginOp(ctx, req.Kind, req.Config)
	if err != nil {
		return res, err
	}
	defer release()
	ctl := &control{t: t}
	if err := ctl.register(ctx); err != nil {
		return res, err
	}
	cfg := req.Config
	nctx := nodeOptions(ctx)

	// The nodes first: a cluster with none fails before anything is built.
	var nodes []deploy.Node
	if err := workflow.ExecuteActivity(nctx, acts.Nodes, cfg.Ref()).Get(ctx, &nodes); err != nil {
		return res, failed(req.Kind, err)
	}
	// What serves now: what auto-rollout goes back to.
	var previous *deploy.Release
	if req.AutoRollout {
		var cur deploy.Release
		if err := workflow.ExecuteActivity(nctx, acts.PickTarget, cfg.Ref(), activities.Pick{Kind: deploy.ReleaseRestart}).Get(ctx, &cur); err == nil {
			previous = &cur
		}
	}

	rel, of, err := chooseRelease(ctx, t, req)
	if err != nil {
		return res, err
	}
	if req.SearchAttributes {
		_ = workflow.UpsertTypedSearchAttributes(ctx, temporal.NewSearchAttributeKeyKeyword("DflowVersion").ValueSet(rel.Version))
	}

	rel, err = beginRelease(ctx, "", req.Kind, cfg, rel, req.Who, of)
	if err != nil {
		return res, err
	}
	res.Release = rel
	count := deploy.RolloutCount(len(nodes), req.RolloutPercent)
	t.event(ctx, -1, "release %d: %s of version %s to %d of %d nodes", rel.ID, rel.Kind, deploy.ShortVersion(rel.Version), count, len(nodes))

	// The release is recorded: the nodes' turn (see decideNodeSteps).
	r := &rollout{t: t, cfg: cfg, rel: rel, steps: decideNodeSteps(ctx), ctl: ctl,
		timed: req.RollingTimed, autoRollout: req.AutoRollout, tolerance: req.Tolerance}
	r.pauseStuck = decideStuckPause(ctx) // in the same workflow task as decideNodeSteps
	if req.AutoRollout {
		t.step(ctx, "baseline", len(nodes))
		if r.baseline, err = verifyAll(ctx, r.steps, cfg, nodes); err != nil {
			return res, finishRelease(ctx, cfg, rel, nil, err, 0)
		}
		t.event(ctx, -1, "baseline health %.1f over %d nodes", deploy.MeanHealth(r.baseline), len(r.baseline))
	}

	outcomes, err := r.copyAll(ctx, nodes)
	if err == nil {
		var check *deploy.HealthCheck
		check, err = r.switchAll(ctx, nodes[:count], outcomes)
		res.Health = check
	}
	res.Nodes = outcomes
	current := 0
	if err == nil {
		switch req.Kind {
		case deploy.ReleaseDeploy:
			current = rel.ID
		case deploy.ReleaseRollback:
			current = of
		}
	}
	if err != nil && (req.AutoRollout || ctl.stuckAbort) {
		why := "auto-rollout"
		if ctl.stuckAbort {
			why = "abort of a stuck deploy"
		}
		if previous == nil && !req.AutoRollout {
			previous = servedBefore(ctx, cfg)
		}
		comp, cerr := r.compensate(ctx, previous, outcomes, req.Who, why)
		res.Compensation = comp
		if cerr != nil {
			err = annotate(err, fmt.Sprintf("; and going back failed: %v", cerr))
		} else if comp != nil {
			err = annotate(err, fmt.Sprintf("; every switched node went back to version %s (release %d)", deploy.ShortVersion(comp.Version), comp.ID))
		}
	}
	if ferr := finishRelease(ctx, cfg, rel, outcomes, err, current); ferr != nil {
		return res, ferr
	}
	res.Release.Outcome = deploy.OutcomeSucceeded
	t.step(ctx, "done", 0)
	return res, nil
}

// servedBefore is the release the cluster served before this deploy (what
// an abort of a stuck deploy goes back to), or nil when there is none. It
// runs on a disconnected context: the abort may come with a cancel.
func servedBefore(ctx workflow.Context, cfg deploy.Config) *deploy.Release {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	var cur deploy.Release
	if err := workflow.ExecuteActivity(nodeOptions(dctx), acts.PickTarget, cfg.Ref(), activities.Pick{Kind: deploy.ReleaseRestart}).Get(dctx, &cur); err != nil {
		return nil
	}
	return &cur
}

// chooseRelease builds the release a deploy ships or picks the one a
// rollback, restart or start ships; of is the release a rollback goes back
// to.
func chooseRelease(ctx workflow.Context, t *tracker, req DeployRequest) (rel deploy.Release, of int, err error) {
	cfg := req.Config
	switch req.Kind {
	case deploy.ReleaseDeploy:
		t.step(ctx, "build", 1)
		what := cfg.PackagePath()
		if req.CommitHash != "" {
			what += " at commit " + req.CommitHash
		}
		t.event(ctx, -1, "building %s (log: %s)", what, activities.BuildLog(cfg))
		var target deploy.Target
		if err := workflow.ExecuteActivity(buildOptions(ctx), acts.Build, cfg.Ref(), activities.BuildSpec{Env: req.BuildEnv, Commit: req.CommitHash}).Get(ctx, &target); err != nil {
			return rel, of, failed("build", err)
		}
		t.done(ctx)
		t.event(ctx, -1, "built %s %s: digest %s, %s, in %.1fs", target.Package, deploy.ShortVersion(target.Version), target.Digest[:12], deploy.HumanBytes(target.Size), target.BuildSeconds)
		rel = deploy.Release{Version: target.Version, Digest: target.Digest, Target: target}
	case deploy.ReleaseRollback, deploy.ReleaseRestart, deploy.ReleaseStart:
		t.step(ctx, "pick", 0)
		var picked deploy.Release
		if err := workflow.ExecuteActivity(nodeOptions(ctx), acts.PickTarget, cfg.Ref(), activities.Pick{Kind: req.Kind, Version: req.Version}).Get(ctx, &picked); err != nil {
			return rel, of, failed(req.Kind, err)
		}
		if req.Kind == deploy.ReleaseRollback {
			of = picked.ID
			t.event(ctx, -1, "rolling back to release %d: version %s", picked.ID, deploy.ShortVersion(picked.Version))
		}
		rel = deploy.Release{Version: picked.Version, Digest: picked.Digest, Target: picked.Target}
	default:
		return rel, of, temporal.NewNonRetryableApplicationError(fmt.Sprintf("unknown deploy kind %q", req.Kind), activities.ErrBadInput, nil)
	}
	return rel, of, nil
}

// beginRelease records rel as running. A workflow records one release per
// key (a retry of the activity returns the same record).
func beginRelease(ctx workflow.Context, key, kind string, cfg deploy.Config, rel deploy.Release, who string, of int) (deploy.Release, error) {
	info := workflow.GetInfo(ctx)
	rel.Kind, rel.Config, rel.Who, rel.Of = kind, cfg, who, of
	rel.Workflow = info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID + key
	rel.At = workflow.Now(ctx).UTC()
	if err := workflow.ExecuteActivity(nodeOptions(ctx), acts.BeginRelease, cfg.Ref(), rel).Get(ctx, &rel); err != nil {
		return rel, failed("record the release", err)
	}
	return rel, nil
}

// finishRelease records how rel ended (even after a cancel) and returns the
// rollout's error, or the recording's.
func finishRelease(ctx workflow.Context, cfg deploy.Config, rel deploy.Release, outcomes []NodeOutcome, err error, current int) error {
	f := activities.Finish{ID: rel.ID, Outcome: deploy.OutcomeSucceeded, Current: current}
	for _, o := range outcomes {
		if o.Version == rel.Version && o.Serving != "" {
			f.Nodes = append(f.Nodes, o.Index)
		}
		if o.Warning != "" {
			f.Warnings = append(f.Warnings, o.Warning)
		}
		if o.LeftOut != "" {
			f.LeftOut = append(f.LeftOut, o.Index)
		}
	}
	if err != nil {
		f.Outcome, f.Error, f.Current = deploy.OutcomeFailed, err.Error(), 0
	}
	dctx, _ := workflow.NewDisconnectedContext(nodeOptions(ctx))
	if ferr := workflow.ExecuteActivity(dctx, acts.FinishRelease, cfg.Ref(), f).Get(dctx, nil); ferr != nil && err == nil {
		return failed(fmt.Sprintf("record the outcome of release %d", rel.ID), ferr)
	}
	if err != nil && ctx.Err() != nil {
		return temporal.NewCanceledError(err.Error())
	}
	return err
}
