package workflows

import (
	"errors"
	"fmt"
	"time"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/agent/api"
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

// Updates a running deploy accepts (dflow deploy pause|resume|abort).
const (
	UpdatePause  = "pause"
	UpdateResume = "resume"
	UpdateAbort  = "abort"
)

// ErrAborted is the error type of a deploy stopped by `dflow deploy abort`.
const ErrAborted = "Aborted"

// control is the state the pause/resume/abort updates change.
type control struct {
	paused, aborted bool
	t               *tracker
}

func (c *control) register(ctx workflow.Context) error {
	done := func() error {
		if c.aborted {
			return errors.New("the deploy is being aborted already")
		}
		return nil
	}
	handlers := []struct {
		name     string
		validate func() error
		apply    func()
	}{
		{UpdatePause, func() error {
			if err := done(); err != nil {
				return err
			}
			if c.paused {
				return errors.New("the deploy is paused already")
			}
			return nil
		}, func() { c.paused = true }},
		{UpdateResume, func() error {
			if err := done(); err != nil {
				return err
			}
			if !c.paused {
				return errors.New("the deploy is not paused")
			}
			return nil
		}, func() { c.paused = false }},
		{UpdateAbort, done, func() { c.aborted = true }},
	}
	for _, h := range handlers {
		err := workflow.SetUpdateHandlerWithOptions(ctx, h.name, func(ctx workflow.Context, who string) (string, error) {
			h.apply()
			c.t.p.Paused = c.paused
			c.t.event(ctx, -1, "%s by %s", h.name, who)
			return h.name + "d", nil
		}, workflow.UpdateHandlerOptions{Validator: func(who string) error { return h.validate() }})
		if err != nil {
			return fmt.Errorf("register update %s: %w", h.name, err)
		}
	}
	return nil
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

	var rel deploy.Release
	of := 0
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
			return res, failed("build", err)
		}
		t.done(ctx)
		t.event(ctx, -1, "built %s %s: digest %s, %s, in %.1fs", target.Package, deploy.ShortVersion(target.Version), target.Digest[:12], deploy.HumanBytes(target.Size), target.BuildSeconds)
		rel = deploy.Release{Version: target.Version, Digest: target.Digest, Target: target}
	case deploy.ReleaseRollback, deploy.ReleaseRestart, deploy.ReleaseStart:
		t.step(ctx, "pick", 0)
		var picked deploy.Release
		if err := workflow.ExecuteActivity(nctx, acts.PickTarget, cfg.Ref(), activities.Pick{Kind: req.Kind, Version: req.Version}).Get(ctx, &picked); err != nil {
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

	var baseline []deploy.Verdict
	if req.AutoRollout {
		t.step(ctx, "baseline", len(nodes))
		if baseline, err = verifyAll(ctx, cfg, nodes); err != nil {
			return res, finishRelease(ctx, cfg, rel, nil, err, 0)
		}
		t.event(ctx, -1, "baseline health %.1f over %d nodes", deploy.MeanHealth(baseline), len(baseline))
	}

	outcomes, err := copyAll(ctx, t, cfg, rel, nodes)
	if err == nil {
		var check *deploy.HealthCheck
		check, err = switchAll(ctx, t, ctl, cfg, req, rel, nodes[:count], outcomes, baseline)
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
	if err != nil && req.AutoRollout {
		comp, cerr := compensate(ctx, t, cfg, previous, outcomes, rel, req.Who)
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

// verifyAll asks verify about every node.
func verifyAll(ctx workflow.Context, cfg deploy.Config, nodes []deploy.Node) ([]deploy.Verdict, error) {
	out := make([]deploy.Verdict, len(nodes))
	err := forEach(ctx, len(nodes), cfg.Nodes.Parallel, func(ctx workflow.Context, i int) error {
		if err := workflow.ExecuteActivity(nodeOptions(ctx), acts.VerifyNode, cfg.Ref(), nodes[i]).Get(ctx, &out[i]); err != nil {
			return failed(fmt.Sprintf("verify node %d", nodes[i].Index), err)
		}
		return nil
	})
	return out, err
}

// copyAll makes every node hold rel's bundle.
func copyAll(ctx workflow.Context, t *tracker, cfg deploy.Config, rel deploy.Release, nodes []deploy.Node) ([]NodeOutcome, error) {
	out := make([]NodeOutcome, len(nodes))
	for i, n := range nodes {
		out[i] = NodeOutcome{Index: n.Index, Address: n.Address}
	}
	t.step(ctx, "copy", len(nodes))
	err := forEach(ctx, len(nodes), cfg.Nodes.Parallel, func(ctx workflow.Context, i int) error {
		n := nodes[i]
		var cr activities.CopyResult
		if err := workflow.ExecuteActivity(copyOptions(ctx), acts.CopyToNode, cfg.Ref(), n, rel.Target, false).Get(ctx, &cr); err != nil {
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
	return out, err
}

// switchAll switches the nodes, deploy.parallel at a time, honouring
// pause/abort, the timed schedule and the auto-rollout health check. A
// plain rollout keeps deploy.parallel node turns going (the next starts as
// soon as one ends); a timed one or one with auto-rollout goes batch by
// batch, as histories from before changeNodeSteps do.
// outcomes (one per node of the cluster, by position) are filled in.
func switchAll(ctx workflow.Context, t *tracker, ctl *control, cfg deploy.Config, req DeployRequest, rel deploy.Release, nodes []deploy.Node, outcomes []NodeOutcome, baseline []deploy.Verdict) (check *deploy.HealthCheck, err error) {
	var bg *background
	if nodeStepsV2(ctx) {
		// The old versions drain and stop beside the rollout; it ends when
		// they have (their errors come after the rollout's own).
		bg = newBackground(ctx)
		defer func() {
			if berr := bg.wait(ctx); berr != nil && err == nil {
				err = berr
			}
		}()
	}
	pos := map[int]int{}
	for i, o := range outcomes {
		pos[o.Index] = i
	}
	one := func(ctx workflow.Context, n deploy.Node) error {
		o, err := switchNode(ctx, t, cfg, rel, n, bg)
		o.Sent, o.Address = outcomes[pos[n.Index]].Sent, n.Address
		outcomes[pos[n.Index]] = o
		if err != nil {
			return err
		}
		t.done(ctx)
		return nil
	}
	t.step(ctx, "switch", len(nodes))
	if bg != nil && req.RollingTimed == 0 && !req.AutoRollout {
		begun, announced := 0, false
		return nil, forEach(ctx, len(nodes), cfg.Deploy.Parallel, func(ctx workflow.Context, i int) error {
			if ctl.paused && !announced {
				announced = true
				t.event(ctx, -1, "paused after %d of %d nodes (those in their turn finish it): `dflow deploy resume` goes on", begun, len(nodes))
			}
			if err := workflow.Await(ctx, func() bool { return !ctl.paused || ctl.aborted }); err != nil {
				return err
			}
			announced = false
			if ctl.aborted {
				return temporal.NewNonRetryableApplicationError(fmt.Sprintf("aborted after %d of %d nodes", begun, len(nodes)), ErrAborted, nil)
			}
			begun++
			return one(ctx, nodes[i])
		})
	}
	batches := deploy.Batches(nodes, cfg.Deploy.Parallel)
	offsets := deploy.RollingOffsets(len(batches), req.RollingTimed)
	start := workflow.Now(ctx)
	for i, batch := range batches {
		if wait := start.Add(offsets[i]).Sub(workflow.Now(ctx)); wait > 0 {
			t.event(ctx, -1, "batch %d of %d at %s (in %s)", i+1, len(batches), start.Add(offsets[i]).UTC().Format(time.TimeOnly), wait.Round(time.Second))
			// Wake early on an abort; a pause is honoured below.
			if _, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return ctl.aborted }); err != nil {
				return check, err
			}
		}
		if ctl.paused {
			t.event(ctx, -1, "paused before batch %d of %d: `dflow deploy resume` goes on", i+1, len(batches))
		}
		if err := workflow.Await(ctx, func() bool { return !ctl.paused || ctl.aborted }); err != nil {
			return check, err
		}
		if ctl.aborted {
			return check, temporal.NewNonRetryableApplicationError(fmt.Sprintf("aborted before batch %d of %d", i+1, len(batches)), ErrAborted, nil)
		}
		err := forEach(ctx, len(batch), len(batch), func(ctx workflow.Context, j int) error {
			return one(ctx, batch[j])
		})
		if err != nil {
			return check, err
		}
		if req.AutoRollout {
			after, err := verifyAll(ctx, cfg, batch)
			if err != nil {
				return check, err
			}
			h := deploy.CheckHealth(baseline, after, req.Tolerance)
			check = &h
			t.event(ctx, -1, "batch %d: %s", i+1, h)
			if h.Failed() {
				return check, temporal.NewNonRetryableApplicationError("auto-rollout: "+h.String(), activities.ErrUnhealthy, nil)
			}
		}
	}
	return check, nil
}

// compensate puts every node that switched to rel back on the previous
// release, through the same zero-downtime switch, as a rollback release of
// its own. It runs on a disconnected context so a cancel cannot stop it.
func compensate(ctx workflow.Context, t *tracker, cfg deploy.Config, previous *deploy.Release, outcomes []NodeOutcome, rel deploy.Release, who string) (*deploy.Release, error) {
	var switched []deploy.Node
	for _, o := range outcomes {
		if o.Version == rel.Version && o.Serving != "" && !o.Skipped {
			switched = append(switched, deploy.Node{Index: o.Index, Address: o.Address})
		}
	}
	if len(switched) == 0 {
		return nil, nil
	}
	if previous == nil {
		return nil, errors.New("there is no previous release to go back to")
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	t.step(dctx, "compensate", len(switched))
	var nodes []deploy.Node
	if err := workflow.ExecuteActivity(nodeOptions(dctx), acts.Nodes, cfg.Ref()).Get(dctx, &nodes); err != nil {
		return nil, failed("compensate", err)
	}
	byIndex := map[int]deploy.Node{}
	for _, n := range nodes {
		byIndex[n.Index] = n
	}
	comp, err := beginRelease(dctx, "#auto-rollout", deploy.ReleaseRollback, cfg, deploy.Release{Version: previous.Version, Digest: previous.Digest, Target: previous.Target}, who+" (auto-rollout)", previous.ID)
	if err != nil {
		return nil, err
	}
	t.event(dctx, -1, "auto-rollout: %d nodes go back to version %s (release %d)", len(switched), deploy.ShortVersion(previous.Version), comp.ID)
	outs := make([]NodeOutcome, len(switched))
	var bg *background
	if nodeStepsV2(dctx) {
		bg = newBackground(dctx)
	}
	err = forEach(dctx, len(switched), cfg.Nodes.Parallel, func(ctx workflow.Context, i int) error {
		var err error
		outs[i], err = switchNode(ctx, t, cfg, comp, byIndex[switched[i].Index], bg)
		if err == nil {
			t.done(ctx)
		}
		return err
	})
	if bg != nil {
		if berr := bg.wait(dctx); berr != nil && err == nil {
			err = berr
		}
	}
	if ferr := finishRelease(dctx, cfg, comp, outs, err, previous.ID); ferr != nil {
		return &comp, ferr
	}
	comp.Outcome = deploy.OutcomeSucceeded
	return &comp, nil
}

// rollout copies rel to every node and switches them, batch by batch.
func rollout(ctx workflow.Context, t *tracker, cfg deploy.Config, rel deploy.Release, nodes []deploy.Node) ([]NodeOutcome, error) {
	out, err := copyAll(ctx, t, cfg, rel, nodes)
	if err != nil {
		return out, err
	}
	_, err = switchAll(ctx, t, &control{t: t}, cfg, DeployRequest{}, rel, nodes, out, nil)
	return out, err
}

// switchNode moves node n to release rel: start beside the old version,
// gate, switch, drain and stop the old (in restart mode: stop the old first).
// With bg (changeNodeSteps), the quick agent calls are local activities and
// the drain and stop of the old version run in bg, so that the node's slot
// is free as soon as it has switched.
func switchNode(ctx workflow.Context, t *tracker, cfg deploy.Config, rel deploy.Release, n deploy.Node, bg *background) (NodeOutcome, error) {
	o := NodeOutcome{Index: n.Index, BeganAt: workflow.Now(ctx)}
	nctx := nodeStepOptions(ctx, cfg)
	quick := func(activity any, args ...any) workflow.Future {
		if bg != nil {
			return workflow.ExecuteLocalActivity(localOptions(ctx), activity, args...)
		}
		return workflow.ExecuteActivity(nctx, activity, args...)
	}
	id := rel.InstanceID()
	var list api.ProcessList
	if err := quick(acts.NodeProcesses, cfg.Ref(), n).Get(ctx, &list); err != nil {
		return o, failed(fmt.Sprintf("node %d", n.Index), err)
	}
	o.Previous, o.Serving = list.Serving, list.Serving
	for _, p := range list.Processes {
		if p.ID == list.Serving {
			o.Version = p.Version
			if rel.Kind != deploy.ReleaseRestart && p.Version == rel.Version && p.Digest == rel.Digest && p.State == api.StateServing {
				o.Skipped = true
				t.event(ctx, n.Index, "node %d serves %s already", n.Index, deploy.ShortVersion(rel.Version))
				return o, nil
			}
		}
	}
	var others []string
	for _, p := range list.Processes {
		if p.ID != id && p.Alive() {
			others = append(others, p.ID)
		}
	}
	stopOthers := func(ctx workflow.Context) error {
		for _, old := range others {
			t.event(ctx, n.Index, "node %d: draining and stopping %s", n.Index, old)
			if err := workflow.ExecuteActivity(nodeStepOptions(ctx, cfg), acts.StopOnNode, cfg.Ref(), n, old, false).Get(ctx, nil); err != nil {
				return failed(fmt.Sprintf("node %d", n.Index), err)
			}
		}
		return nil
	}
	if cfg.App.Mode == deploy.ModeRestart {
		if err := stopOthers(ctx); err != nil {
			return o, err
		}
		o.Serving = ""
	}
	t.event(ctx, n.Index, "node %d: starting %s", n.Index, id)
	var started api.ProcessInfo
	if err := workflow.ExecuteActivity(nctx, acts.StartOnNode, cfg.Ref(), n, rel).Get(ctx, &started); err != nil {
		return o, failed("deploy stopped", err)
	}
	if started.ListenWarning != "" {
		o.Warning = fmt.Sprintf("node %d: %s", n.Index, started.ListenWarning)
	}
	t.event(ctx, n.Index, "node %d: %s is ready; switching", n.Index, id)
	if err := quick(acts.SwitchOnNode, cfg.Ref(), n, id).Get(ctx, nil); err != nil {
		return o, failed(fmt.Sprintf("node %d", n.Index), err)
	}
	o.Serving, o.Version, o.SwitchedAt = id, rel.Version, workflow.Now(ctx)
	if cfg.App.Mode != deploy.ModeRestart {
		if bg != nil {
			bg.run(ctx, stopOthers)
		} else if err := stopOthers(ctx); err != nil {
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

// annotate adds more to an error's message, keeping its type.
func annotate(err error, more string) error {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return temporal.NewApplicationErrorWithOptions(app.Message()+more, app.Type(), temporal.ApplicationErrorOptions{NonRetryable: true})
	}
	return fmt.Errorf("%w%s", err, more)
}

// forEach runs f(0..n-1) with at most parallel running at once and returns
// the first error (after the running ones finish); after an error nothing
// new starts. A new one starts as soon as one ends (histories from before
// changeNodeSteps ran them in lockstep groups of parallel).
func forEach(ctx workflow.Context, n, parallel int, f func(ctx workflow.Context, i int) error) error {
	if parallel < 1 {
		parallel = 1
	}
	var first error
	if !nodeStepsV2(ctx) {
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
	running := 0
	wg := workflow.NewWaitGroup(ctx)
	for i := 0; i < n; i++ {
		if err := workflow.Await(ctx, func() bool { return running < parallel || first != nil }); err != nil {
			if first == nil {
				first = err
			}
		}
		if first != nil {
			break
		}
		running++
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			defer func() { running-- }()
			if err := f(ctx, i); err != nil && first == nil {
				first = err
			}
		})
	}
	wg.Wait(ctx)
	return first
}

// changeNodeSteps is the workflow change that made a node's steps cheaper
// for the control plane: the quick agent calls (list, switch) run as local
// activities, the drain and stop of the old version no longer hold up the
// next node, and forEach starts work as soon as a slot frees. Histories
// recorded before it replay the old way.
const changeNodeSteps = "node-steps-2"

func nodeStepsV2(ctx workflow.Context) bool {
	return workflow.GetVersion(ctx, changeNodeSteps, workflow.DefaultVersion, 1) == 1
}

// background runs work (the old versions' drains and stops) beside the
// rollout; wait collects its first error.
type background struct {
	wg  workflow.WaitGroup
	err error
}

func newBackground(ctx workflow.Context) *background {
	return &background{wg: workflow.NewWaitGroup(ctx)}
}

func (b *background) run(ctx workflow.Context, f func(ctx workflow.Context) error) {
	b.wg.Add(1)
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer b.wg.Done()
		if err := f(ctx); err != nil && b.err == nil {
			b.err = err
		}
	})
}

func (b *background) wait(ctx workflow.Context) error {
	b.wg.Wait(ctx)
	return b.err
}

// localOptions are for the quick, idempotent agent calls run as local
// activities (listing a node's versions, switching its port): retried
// like the other node steps.
func localOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: 2 * time.Minute,
		RetryPolicy:            stepRetry(activities.ErrBadInput),
	})
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
