package workflows

import (
	"errors"

	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/workflow"
)

// Compensation: when auto-rollout fails a deploy (unhealthy, a failed
// node, a cancel or an abort), or an abort ends a deploy with a stuck node
// step (stuck.go), every node it switched goes back to the release that
// served before, through the same zero-downtime cutover, as a rollback
// release of its own.

// compensate puts every node that switched to the rollout's release back on
// previous; why ("auto-rollout", ...) is said in its events and in the
// rollback release's who. It runs on a disconnected context so a cancel
// cannot stop it.
func (r *rollout) compensate(ctx workflow.Context, previous *deploy.Release, outcomes []NodeOutcome, who, why string) (*deploy.Release, error) {
	t, cfg := r.t, r.cfg
	var switched []deploy.Node
	for _, o := range outcomes {
		if o.Version == r.rel.Version && o.Serving != "" && !o.Skipped {
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
	comp, err := beginRelease(dctx, "#auto-rollout", deploy.ReleaseRollback, cfg, deploy.Release{Version: previous.Version, Digest: previous.Digest, Target: previous.Target}, who+" ("+why+")", previous.ID)
	if err != nil {
		return nil, err
	}
	t.event(dctx, -1, "%s: %d nodes go back to version %s (release %d)", why, len(switched), deploy.ShortVersion(previous.Version), comp.ID)
	back := newRollout(t, cfg, comp, r.steps)
	outs := make([]NodeOutcome, len(switched))
	bg := back.steps.behind(dctx)
	err = back.steps.forEach(dctx, len(switched), cfg.Nodes.Parallel, func(ctx workflow.Context, i int) error {
		var err error
		outs[i], err = back.cutover(ctx, byIndex[switched[i].Index], bg)
		if err == nil {
			t.done(ctx)
		}
		return err
	})
	if berr := bg.wait(dctx); berr != nil && err == nil {
		err = berr
	}
	if ferr := finishRelease(dctx, cfg, comp, outs, err, previous.ID); ferr != nil {
		return &comp, ferr
	}
	comp.Outcome = deploy.OutcomeSucceeded
	return &comp, nil
}
