package workflows

import (
	"fmt"
	"slices"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// GCRequest asks to remove old versions from the nodes and the control
// plane's artifact store.
type GCRequest struct {
	Config deploy.Config `json:"config"`
	// Count keeps the versions of the Count newest succeeded releases.
	Count int `json:"count,omitempty"`
	// Older keeps the versions used since then: a date, a time or a
	// duration before the run (deploy.ParseSince), read when the workflow
	// runs, so a schedule's "7d" is always the last seven days.
	Older  string `json:"older,omitempty"`
	DryRun bool   `json:"dry_run,omitempty"`
	Who    string `json:"who"`
}

// GCNode is what gc removed from one node.
type GCNode struct {
	Index   int               `json:"index"`
	Removed []string          `json:"removed"`
	InUse   map[string]string `json:"in_use,omitempty"`
}

// GCResult is what gc planned and did.
type GCResult struct {
	Plan   deploy.GCPlan `json:"plan"`
	DryRun bool          `json:"dry_run,omitempty"`
	Nodes  []GCNode      `json:"nodes,omitempty"`
	// Store are the digests removed from the control plane's artifact store.
	Store []string `json:"store,omitempty"`
}

// GC removes old versions (bundle and unpacked release) from every node
// and from the control plane's artifact store, as deploy.PlanGC picks
// them: never the current release, a version a live process runs from,
// the newest build, nor the versions rollback goes back to within the kept
// window. Every node must answer: gc cannot know what an unreachable node
// runs. DryRun plans only.
func GC(ctx workflow.Context, req GCRequest) (GCResult, error) {
	res := GCResult{DryRun: req.DryRun}
	t, release, err := beginOp(ctx, "gc", req.Config)
	if err != nil {
		return res, err
	}
	defer release()
	cfg := req.Config
	nctx := nodeOptions(ctx)
	since, err := deploy.ParseSince(req.Older, workflow.Now(ctx))
	if err != nil {
		return res, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrBadInput, nil)
	}
	policy := deploy.GCPolicy{Count: req.Count, Since: since}
	if err := policy.Validate(); err != nil {
		return res, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrBadInput, nil)
	}

	t.step(ctx, "inventory", 0)
	var inv activities.Inventory
	if err := workflow.ExecuteActivity(nctx, acts.Inventory, cfg.Ref()).Get(ctx, &inv); err != nil {
		return res, failed("gc: inventory", err)
	}
	nodes := inv.State.Nodes
	held := make([][]string, len(nodes))
	running := make([][]string, len(nodes))
	steps := decideNodeSteps(ctx)
	err = steps.forEach(ctx, len(nodes), cfg.Nodes.Parallel, func(ctx workflow.Context, i int) error {
		n := nodes[i]
		if err := workflow.ExecuteActivity(nctx, acts.NodeArtifacts, cfg.Ref(), n).Get(ctx, &held[i]); err != nil {
			return failed(fmt.Sprintf("gc: node %d (gc needs every node; `dflow repair` first)", n.Index), err)
		}
		var l api.ProcessList
		if err := workflow.ExecuteActivity(nctx, acts.NodeProcesses, cfg.Ref(), n).Get(ctx, &l); err != nil {
			return failed(fmt.Sprintf("gc: node %d (gc needs every node; `dflow repair` first)", n.Index), err)
		}
		for _, p := range l.Processes {
			if p.Alive() {
				running[i] = append(running[i], p.Digest)
			}
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	var gi deploy.GCInventory
	for i, n := range nodes {
		gi.Nodes = append(gi.Nodes, deploy.GCNodeInventory{Index: n.Index, Held: held[i], Running: running[i]})
	}
	if err := workflow.ExecuteActivity(nctx, acts.StoreArtifacts, cfg.Ref()).Get(ctx, &gi.Store); err != nil {
		return res, failed("gc: list the artifact store", err)
	}
	plan, err := deploy.PlanGC(inv.State, gi, policy)
	if err != nil {
		return res, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrBadInput, nil)
	}
	res.Plan = plan
	t.event(ctx, -1, "%d versions kept, %d to remove", len(plan.Keep), len(plan.Remove))
	for _, r := range plan.LostRollbacks {
		t.event(ctx, -1, "rollback to release %d (version %s) will not be possible any more", r.ID, deploy.ShortVersion(r.Version))
	}
	if req.DryRun || len(plan.Remove) == 0 {
		t.step(ctx, "done", 0)
		return res, nil
	}

	t.step(ctx, "remove", len(nodes)+1)
	res.Nodes = make([]GCNode, len(nodes))
	err = steps.forEach(ctx, len(nodes), cfg.Nodes.Parallel, func(ctx workflow.Context, i int) error {
		n := nodes[i]
		res.Nodes[i] = GCNode{Index: n.Index, Removed: []string{}}
		var ds []string
		for _, v := range plan.Remove {
			if slices.Contains(v.Nodes, n.Index) {
				ds = append(ds, v.Digest)
			}
		}
		if len(ds) > 0 {
			var r activities.Removed
			if err := workflow.ExecuteActivity(nctx, acts.RemoveFromNode, cfg.Ref(), n, ds).Get(ctx, &r); err != nil {
				return failed(fmt.Sprintf("gc: node %d", n.Index), err)
			}
			res.Nodes[i].Removed, res.Nodes[i].InUse = r.Removed, r.InUse
			for _, d := range ds {
				if why, ok := r.InUse[d]; ok {
					t.event(ctx, n.Index, "node %d: kept %s: %s", n.Index, d[:12], why)
				}
			}
		}
		t.done(ctx)
		t.event(ctx, n.Index, "node %d: %d versions removed", n.Index, len(res.Nodes[i].Removed))
		return nil
	})
	if err != nil {
		return res, err
	}
	var ds []string
	for _, v := range plan.Remove {
		if v.InStore {
			ds = append(ds, v.Digest)
		}
	}
	if err := workflow.ExecuteActivity(nctx, acts.RemoveFromStore, cfg.Ref(), ds).Get(ctx, &res.Store); err != nil {
		return res, failed("gc: the artifact store", err)
	}
	t.done(ctx)
	t.event(ctx, -1, "control plane: %d bundles removed", len(res.Store))
	t.step(ctx, "done", 0)
	return res, nil
}

// Scheduled operations.
const (
	ScheduledGC    = "gc"
	ScheduledChaos = "chaos-monkey"
)

// ScheduledRequest is what a Temporal Schedule's action starts: a GC or a
// Chaos, run under the cluster lock.
type ScheduledRequest struct {
	Op    string        `json:"op"`
	GC    *GCRequest    `json:"gc,omitempty"`
	Chaos *ChaosRequest `json:"chaos,omitempty"`
}

// ScheduledResult says what a scheduled run did.
type ScheduledResult struct {
	Skipped string       `json:"skipped,omitempty"`
	GC      *GCResult    `json:"gc,omitempty"`
	Chaos   *ChaosResult `json:"chaos,omitempty"`
}

// Scheduled runs a scheduled gc or chaos-monkey as a child workflow under
// the cluster lock (a Schedule appends a timestamp to its workflows' IDs,
// so they cannot hold the lock themselves). When another operation holds
// it, the run is skipped: the next one comes soon enough.
func Scheduled(ctx workflow.Context, req ScheduledRequest) (ScheduledResult, error) {
	var res ScheduledResult
	var err error
	switch {
	case req.Op == ScheduledGC && req.GC != nil:
		var r GCResult
		err = onLock(ctx, req.GC.Config, "gc (scheduled)", req.GC.Who).run(GC, *req.GC, &r)
		res.GC = &r
		if lockHeld(err) {
			res.Skipped = "another operation holds the cluster lock " + LockID(req.GC.Config)
			res.GC, err = nil, nil
		}
	case req.Op == ScheduledChaos && req.Chaos != nil:
		var r ChaosResult
		err = onLock(ctx, req.Chaos.Config, "chaos-monkey (scheduled)", req.Chaos.Who).run(Chaos, *req.Chaos, &r)
		res.Chaos = &r
		if lockHeld(err) {
			res.Skipped = "another operation holds the cluster lock " + LockID(req.Chaos.Config)
			res.Chaos, err = nil, nil
		}
	default:
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("scheduled: unknown operation %q", req.Op), activities.ErrBadInput, nil)
	}
	return res, err
}
