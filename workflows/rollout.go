package workflows

import (
	"fmt"
	"time"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/workflow"
)

// A rollout takes one release to a set of nodes: copy the bundle to every
// node (copyAll), then switch them deploy.parallel at a time (switchAll,
// switch.go), each through a node's cutover (cutover.go); when auto-rollout
// finds the switched nodes less healthy, compensate (compensate.go) takes
// them back. Deploy runs one per run; a repair runs one for the nodes it
// provisions.

// rollout is what every step of one release's rollout shares.
type rollout struct {
	t     *tracker
	cfg   deploy.Config
	rel   deploy.Release
	steps nodeSteps
	// ctl is the deploy's pause/resume/abort state.
	ctl *control
	// timed spreads the batches evenly over this duration with durable
	// timers (DeployRequest.RollingTimed; 0: no schedule).
	timed time.Duration
	// autoRollout checks the switched nodes' health against baseline after
	// every batch, failing beyond tolerance (DeployRequest.AutoRollout).
	autoRollout bool
	tolerance   float64
	baseline    []deploy.Verdict
	// pauseStuck: a node step that exhausts its retries waits for an
	// operator's decision (stuck.go) instead of failing the rollout; a
	// deploy since changeStuckPause (a repair's or a compensation's
	// rollout fails as before).
	pauseStuck bool
}

// newRollout is a rollout of rel with no schedule and no health check, as a
// repair runs it; Deploy sets the rest from its request.
func newRollout(t *tracker, cfg deploy.Config, rel deploy.Release, steps nodeSteps) *rollout {
	return &rollout{t: t, cfg: cfg, rel: rel, steps: steps, ctl: &control{t: t}}
}

// run copies the release to every node and switches them all.
func (r *rollout) run(ctx workflow.Context, nodes []deploy.Node) ([]NodeOutcome, error) {
	out, err := r.copyAll(ctx, nodes)
	if err != nil {
		return out, err
	}
	_, err = r.switchAll(ctx, nodes, out)
	return out, err
}

// copyAll makes every node hold the release's bundle; the outcomes, one per
// node by position, say what was sent.
func (r *rollout) copyAll(ctx workflow.Context, nodes []deploy.Node) ([]NodeOutcome, error) {
	t, cfg, rel := r.t, r.cfg, r.rel
	out := make([]NodeOutcome, len(nodes))
	for i, n := range nodes {
		out[i] = NodeOutcome{Index: n.Index, Address: n.Address}
	}
	t.step(ctx, "copy", len(nodes))
	err := r.steps.forEach(ctx, len(nodes), cfg.Nodes.Parallel, func(ctx workflow.Context, i int) error {
		n := nodes[i]
		var cr activities.CopyResult
		err := r.nodeStep(ctx, n.Index, "copy", func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(copyOptions(ctx), acts.CopyToNode, cfg.Ref(), n, rel.Target, false).Get(ctx, &cr)
		})
		if why, ok := leftOut(err); ok {
			out[i].LeftOut = why
			t.done(ctx)
			return nil
		}
		if err != nil {
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
