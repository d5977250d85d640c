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
	// Rounds counts the rounds so far, across continue-as-new.
	Rounds int `json:"rounds,omitempty"`
	// MaxRounds ends the watch after that many rounds (0: never).
	MaxRounds int `json:"max_rounds,omitempty"`
}

// VerifyWatchID is the workflow ID of cfg's cluster's verify --watch.
func VerifyWatchID(cfg deploy.Config) string { return LockID(cfg) + "-verify" }

// VerifyWatch runs `verify --watch` on the watch loop (watch.go): it
// verifies every node (or one) every Interval (at least a second),
// recording each verdict in the store, until it is cancelled. It holds no
// cluster lock: it changes nothing on the nodes.
func VerifyWatch(ctx workflow.Context, req VerifyRequest) error {
	t, err := newTracker(ctx, "verify --watch")
	if err != nil {
		return err
	}
	loop := watchLoop{interval: max(req.Interval, time.Second), rounds: &req.Rounds, maxRounds: req.MaxRounds, next: func() error {
		return workflow.NewContinueAsNewError(ctx, VerifyWatch, req)
	}}
	return watch(ctx, loop, func(round int) {
		var nodes []deploy.Node
		if err := workflow.ExecuteActivity(nodeOptions(ctx), acts.Nodes, req.Config.Ref()).Get(ctx, &nodes); err != nil {
			t.event(ctx, -1, "round %d: %v", round, err)
			return
		}
		if req.Index >= 0 {
			nodes = filterIndex(nodes, req.Index)
		}
		t.step(ctx, fmt.Sprintf("round %d", round), len(nodes))
		verdicts, err := verifyAll(ctx, decideNodeSteps(ctx), req.Config, nodes)
		if err != nil {
			t.event(ctx, -1, "round %d: %v", round, err)
		}
		for _, v := range verdicts {
			state := "healthy"
			if !v.Healthy() {
				state = "UNHEALTHY"
			}
			t.event(ctx, v.Index, "node %d: health %.1f threshold %.1f: %s %s", v.Index, v.Health, v.Threshold, state, v.Detail)
		}
	})
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
