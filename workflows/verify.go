package workflows

import (
	"fmt"
	"time"

	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/workflow"
)

// VerifyRequest asks to verify the nodes (Index >= 0: that node only) every
// Interval until cancelled.
type VerifyRequest struct {
	Config   deploy.Config `json:"config"`
	Index    int           `json:"index"`
	Interval time.Duration `json:"interval"`
	// Rounds counts the rounds done by earlier runs (continue-as-new).
	Rounds int `json:"rounds,omitempty"`
}

// verifyRoundsPerRun bounds one run's history; then it continues as new.
const verifyRoundsPerRun = 200

// VerifyWatch verifies every node (or one) every Interval, recording each
// verdict in the store, until it is cancelled. It continues as new when
// Temporal suggests it or after verifyRoundsPerRun rounds. It holds no
// cluster lock: it changes nothing on the nodes.
func VerifyWatch(ctx workflow.Context, req VerifyRequest) error {
	t, err := newTracker(ctx, "verify --watch")
	if err != nil {
		return err
	}
	interval := max(req.Interval, time.Second)
	for i := 0; ; i++ {
		var nodes []deploy.Node
		if err := workflow.ExecuteActivity(nodeOptions(ctx), acts.Nodes, req.Config.Ref()).Get(ctx, &nodes); err != nil {
			t.event(ctx, -1, "round %d: %v", req.Rounds+i+1, err)
		} else {
			if req.Index >= 0 {
				nodes = filterIndex(nodes, req.Index)
			}
			t.step(ctx, fmt.Sprintf("round %d", req.Rounds+i+1), len(nodes))
			verdicts, err := verifyAll(ctx, decideNodeSteps(ctx), req.Config, nodes)
			if err != nil {
				t.event(ctx, -1, "round %d: %v", req.Rounds+i+1, err)
			}
			for _, v := range verdicts {
				state := "healthy"
				if !v.Healthy() {
					state = "UNHEALTHY"
				}
				t.event(ctx, v.Index, "node %d: health %.1f threshold %.1f: %s %s", v.Index, v.Health, v.Threshold, state, v.Detail)
			}
		}
		if err := workflow.Sleep(ctx, interval); err != nil {
			return err // cancelled
		}
		if i+1 >= verifyRoundsPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			req.Rounds += i + 1
			return workflow.NewContinueAsNewError(ctx, VerifyWatch, req)
		}
	}
}

func filterIndex(nodes []deploy.Node, index int) []deploy.Node {
	for _, n := range nodes {
		if n.Index == index {
			return []deploy.Node{n}
		}
	}
	return nil
}

// verifyAll asks verify about every node.
func verifyAll(ctx workflow.Context, steps nodeSteps, cfg deploy.Config, nodes []deploy.Node) ([]deploy.Verdict, error) {
	out := make([]deploy.Verdict, len(nodes))
	err := steps.forEach(ctx, len(nodes), cfg.Nodes.Parallel, func(ctx workflow.Context, i int) error {
		if err := workflow.ExecuteActivity(nodeOptions(ctx), acts.VerifyNode, cfg.Ref(), nodes[i]).Get(ctx, &out[i]); err != nil {
			return failed(fmt.Sprintf("verify node %d", nodes[i].Index), err)
		}
		return nil
	})
	return out, err
}
