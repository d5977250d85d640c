package workflows

import (
	"go.temporal.io/sdk/workflow"
)

// changeNodeSteps is the workflow change that made a node's steps cheaper
// for the control plane: the quick agent calls (list, switch) run as local
// activities, the drain and stop of the old version no longer hold up the
// next node, and forEach starts work as soon as a slot frees. Histories
// recorded before it replay the old way (testdata/before-node-steps-2).
const changeNodeSteps = "node-steps-2"

// nodeSteps is changeNodeSteps as decided for one run, and the one place
// that knows both ways: how work over nodes is paced (forEach), how a
// node's quick agent calls run (quick) and whether the old version's drain
// and stop trail the node's turn (behind). Everything that fans out over
// nodes takes one, so nothing can do so undecided.
type nodeSteps struct {
	v2 bool
}

// decideNodeSteps is the one workflow.GetVersion call for changeNodeSteps.
// A workflow calls it right before its first fan-out over nodes (for a
// deploy, once the release is recorded; elsewhere once the nodes are
// listed), never earlier: that is the workflow task in which every history
// recorded since the change holds the version marker, and a replay that
// asks in an earlier task is answered DefaultVersion (the old way). Asking
// again later in the same run returns the same answer.
func decideNodeSteps(ctx workflow.Context) nodeSteps {
	return nodeSteps{v2: workflow.GetVersion(ctx, changeNodeSteps, workflow.DefaultVersion, 1) == 1}
}

// sliding tells whether a rollout without a schedule or a health check
// keeps deploy.parallel node turns going (the next starts as soon as one
// ends); before changeNodeSteps every rollout went batch by batch.
func (s nodeSteps) sliding() bool { return s.v2 }

// forEach runs f(0..n-1) with at most parallel running at once and returns
// the first error (after the running ones finish); after an error nothing
// new starts. A new one starts as soon as one ends (before changeNodeSteps,
// in lockstep groups of parallel).
func (s nodeSteps) forEach(ctx workflow.Context, n, parallel int, f func(ctx workflow.Context, i int) error) error {
	if parallel < 1 {
		parallel = 1
	}
	var first error
	if !s.v2 {
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

// quick runs one of a node's quick, idempotent agent calls (listing its
// versions, switching its port): a local activity (localOptions) since
// changeNodeSteps, before it an activity with opts' options.
func (s nodeSteps) quick(ctx, opts workflow.Context, activity any, args ...any) workflow.Future {
	if s.v2 {
		return workflow.ExecuteLocalActivity(localOptions(ctx), activity, args...)
	}
	return workflow.ExecuteActivity(opts, activity, args...)
}

// behind runs the work that may trail a node's turn (the old versions'
// drains and stops): beside the rollout since changeNodeSteps, so that the
// node's slot is free as soon as it has switched; before it, in the turn.
type behind struct {
	v2  bool
	wg  workflow.WaitGroup
	err error
}

// behind returns a runner for one rollout; its wait collects the first
// error of what ran beside it.
func (s nodeSteps) behind(ctx workflow.Context) *behind {
	b := &behind{v2: s.v2}
	if s.v2 {
		b.wg = workflow.NewWaitGroup(ctx)
	}
	return b
}

// run runs f beside the rollout (its error comes from wait) or, before
// changeNodeSteps, at once (its error returned).
func (b *behind) run(ctx workflow.Context, f func(ctx workflow.Context) error) error {
	if !b.v2 {
		return f(ctx)
	}
	b.wg.Add(1)
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer b.wg.Done()
		if err := f(ctx); err != nil && b.err == nil {
			b.err = err
		}
	})
	return nil
}

// wait waits for what runs beside the rollout and returns its first error.
func (b *behind) wait(ctx workflow.Context) error {
	if !b.v2 {
		return nil
	}
	b.wg.Wait(ctx)
	return b.err
}
