package workflows

import (
	"fmt"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/workflow"
)

// Inspecting the cluster, read only: what Repair, RepairWatch and Chaos
// decide from. The state from the Store, the nodes that are live, and for
// every node what its agent says and, when its version serves, its health.

// inspection is what inspect found.
type inspection struct {
	state deploy.State
	seen  []deploy.NodeHealth
	// steps was decided once the nodes were listed (decideNodeSteps).
	steps nodeSteps
}

// healthy counts the recorded nodes below the count that need nothing.
func (in inspection) healthy() int {
	n := 0
	for _, h := range in.seen {
		if h.Index < in.state.Count && h.Recorded && h.Healthy() {
			n++
		}
	}
	return n
}

// whole tells whether every index below the count is recorded and healthy.
func (in inspection) whole() bool { return in.healthy() == in.state.Count }

// inspect loads the state, lists the live nodes, and asks every node's
// agent and verify how it is.
func inspect(ctx workflow.Context, t *tracker, cfg deploy.Config) (inspection, error) {
	var in inspection
	nctx := nodeOptions(ctx)
	var inv activities.Inventory
	if err := workflow.ExecuteActivity(nctx, acts.Inventory, cfg.Ref()).Get(ctx, &inv); err != nil {
		return in, failed("inventory", err)
	}
	in.state = inv.State
	in.seen = deploy.RepairSubjects(inv.State.Nodes, inv.Live)
	in.steps = decideNodeSteps(ctx)
	err := in.steps.forEach(ctx, len(in.seen), max(cfg.Nodes.Parallel, 1), func(ctx workflow.Context, i int) error {
		h := in.seen[i]
		if err := workflow.ExecuteActivity(nctx, acts.InspectNode, cfg.Ref(), h).Get(ctx, &h); err != nil {
			return failed(fmt.Sprintf("inspect node %d", h.Index), err)
		}
		if h.Live && h.AgentOK && h.Serving != "" && h.ServingAlive {
			if err := workflow.ExecuteActivity(nctx, acts.VerifyNode, cfg.Ref(), h.Node).Get(ctx, &h.Verdict); err != nil {
				return failed(fmt.Sprintf("verify node %d", h.Index), err)
			}
			h.Verified = true
		}
		in.seen[i] = h
		return nil
	})
	return in, err
}
