package workflows

import (
	"fmt"
	"time"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// switchAll switches the nodes, deploy.parallel at a time, honouring
// pause/abort, the timed schedule and the auto-rollout health check. A
// plain rollout keeps deploy.parallel node turns going (the next starts as
// soon as one ends); a timed one or one with auto-rollout goes batch by
// batch, as every rollout did before changeNodeSteps.
// outcomes (one per node of the cluster, by position) are filled in.
func (r *rollout) switchAll(ctx workflow.Context, nodes []deploy.Node, outcomes []NodeOutcome) (check *deploy.HealthCheck, err error) {
	t, ctl := r.t, r.ctl
	// The old versions drain and stop beside the rollout; it ends when
	// they have (their errors come after the rollout's own).
	bg := r.steps.behind(ctx)
	defer func() {
		if berr := bg.wait(ctx); berr != nil && err == nil {
			err = berr
		}
	}()
	pos := map[int]int{}
	for i, o := range outcomes {
		pos[o.Index] = i
	}
	one := func(ctx workflow.Context, n deploy.Node) error {
		if why := outcomes[pos[n.Index]].LeftOut; why != "" {
			// Its copy was stuck and skipped: it sits this rollout out.
			t.event(ctx, n.Index, "node %d is left out of this rollout", n.Index)
			t.done(ctx)
			return nil
		}
		o, err := r.cutover(ctx, n, bg)
		o.Sent, o.Address = outcomes[pos[n.Index]].Sent, n.Address
		outcomes[pos[n.Index]] = o
		if err != nil {
			return err
		}
		t.done(ctx)
		return nil
	}
	t.step(ctx, "switch", len(nodes))
	if r.steps.sliding() && r.timed == 0 && !r.autoRollout {
		return nil, r.turns(ctx, nodes, one)
	}
	batches := deploy.Batches(nodes, r.cfg.Deploy.Parallel)
	offsets := deploy.RollingOffsets(len(batches), r.timed)
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
		if err := ctl.hold(ctx); err != nil {
			return check, err
		}
		if ctl.aborted {
			return check, abortedError(fmt.Sprintf("before batch %d of %d", i+1, len(batches)))
		}
		err := r.steps.forEach(ctx, len(batch), len(batch), func(ctx workflow.Context, j int) error {
			return one(ctx, batch[j])
		})
		if err != nil {
			return check, err
		}
		// A node left out of the rollout is not the version's to judge.
		var judged []deploy.Node
		for _, n := range batch {
			if outcomes[pos[n.Index]].LeftOut == "" {
				judged = append(judged, n)
			}
		}
		if r.autoRollout && len(judged) > 0 {
			after, err := verifyAll(ctx, r.steps, r.cfg, judged)
			if err != nil {
				return check, err
			}
			h := deploy.CheckHealth(r.baseline, after, r.tolerance)
			check = &h
			t.event(ctx, -1, "batch %d: %s", i+1, h)
			if h.Failed() {
				return check, temporal.NewNonRetryableApplicationError("auto-rollout: "+h.String(), activities.ErrUnhealthy, nil)
			}
		}
	}
	return check, nil
}

// turns runs one(n) for every node, deploy.parallel node turns at a time,
// the next as soon as one ends; a pause holds the next turn (those in their
// turn finish it) and an abort ends the rollout there.
func (r *rollout) turns(ctx workflow.Context, nodes []deploy.Node, one func(ctx workflow.Context, n deploy.Node) error) error {
	t, ctl := r.t, r.ctl
	begun, announced := 0, false
	return r.steps.forEach(ctx, len(nodes), r.cfg.Deploy.Parallel, func(ctx workflow.Context, i int) error {
		if ctl.paused && !announced {
			announced = true
			t.event(ctx, -1, "paused after %d of %d nodes (those in their turn finish it): `dflow deploy resume` goes on", begun, len(nodes))
		}
		if err := ctl.hold(ctx); err != nil {
			return err
		}
		announced = false
		if ctl.aborted {
			return abortedError(fmt.Sprintf("after %d of %d nodes", begun, len(nodes)))
		}
		begun++
		return one(ctx, nodes[i])
	})
}
