package workflows

import (
	"fmt"
	"strings"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Provision operations.
const (
	OpSet     = "set"
	OpCycle   = "cycle"
	OpDestroy = "destroy"
)

// ProvisionRequest asks to converge the cluster to Count nodes (set), to
// recreate the node at Index (cycle), or to destroy it (destroy).
type ProvisionRequest struct {
	Config deploy.Config `json:"config"`
	Op     string        `json:"op"`
	Count  int           `json:"count,omitempty"`
	Index  int           `json:"index,omitempty"`
}

// ProvisionResult tells what was done.
type ProvisionResult struct {
	Created   []deploy.Node `json:"created,omitempty"`
	Destroyed []deploy.Node `json:"destroyed,omitempty"`
	// Release is the release the created nodes were brought to (0: the
	// cluster has none yet, and they serve nothing); Provisioned is what
	// its rollout did on each of them.
	Release     int           `json:"release,omitempty"`
	Version     string        `json:"version,omitempty"`
	Provisioned []NodeOutcome `json:"provisioned,omitempty"`
}

// changeConverge: set and cycle bring the nodes they create to the
// cluster's current release (before it, they were left empty until a
// repair or a deploy).
const changeConverge = "provision-converge"

// Provision creates and destroys nodes, and brings every node it creates
// to the cluster's current release (copy, start, gate, switch: a rollout of
// that release to the new nodes) before it ends. Every step is idempotent,
// so after a crash of the worker or the control plane the workflow resumes
// and ends with exactly the nodes asked for.
func Provision(ctx workflow.Context, req ProvisionRequest) (ProvisionResult, error) {
	var res ProvisionResult
	t, release, err := beginOp(ctx, req.Op, req.Config)
	if err != nil {
		return res, err
	}
	defer release()
	ctx = nodeOptions(ctx)
	cfg := req.Config

	t.step(ctx, "inventory", 0)
	var inv activities.Inventory
	if err := workflow.ExecuteActivity(ctx, acts.Inventory, cfg.Ref()).Get(ctx, &inv); err != nil {
		return res, fmt.Errorf("inventory: %w", err)
	}

	var create []int
	var destroy []deploy.Node
	switch req.Op {
	case OpSet:
		if req.Count < 0 {
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("set: count %d is negative", req.Count), activities.ErrBadInput, nil)
		}
		// Checked before anything is saved (the CLI checks first; a request
		// from elsewhere is checked here). Max is 0 in histories recorded
		// before nodes.max existed.
		if m := cfg.Nodes.Max; m > 0 && req.Count > m {
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("set: count %d is more than nodes.max (%d)", req.Count, m), activities.ErrBadInput, nil)
		}
		plan := deploy.PlanSet(inv.State.Nodes, inv.Live, req.Count)
		create, destroy = plan.Create, plan.Destroy
		if err := workflow.ExecuteActivity(ctx, acts.SetCount, cfg.Ref(), req.Count).Get(ctx, nil); err != nil {
			return res, fmt.Errorf("record count %d: %w", req.Count, err)
		}
		t.event(ctx, -1, "converging to %d nodes: %d to create, %d to destroy", req.Count, len(create), len(destroy))
	case OpCycle, OpDestroy:
		n, ok := inv.State.Node(req.Index)
		if !ok {
			live := deploy.State{Nodes: inv.Live}
			if n, ok = live.Node(req.Index); !ok {
				return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: no node at index %d", req.Op, req.Index), activities.ErrBadInput, nil)
			}
		}
		destroy = []deploy.Node{n}
		if req.Op == OpCycle {
			create = []int{req.Index}
			if workflow.GetVersion(ctx, changeCycleBound, workflow.DefaultVersion, 1) == 1 {
				if err := cycleBound(ctx, t, cfg, req.Index); err != nil {
					return res, err
				}
			}
		}
	default:
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("unknown provision op %q", req.Op), activities.ErrBadInput, nil)
	}
	parallel := max(cfg.Nodes.Parallel, 1)

	t.step(ctx, "destroy", len(destroy))
	for _, batch := range deploy.Batches(destroy, parallel) {
		futures := make([]workflow.Future, len(batch))
		for i, n := range batch {
			t.event(ctx, n.Index, "destroying node %d (%s)", n.Index, n.Address)
			futures[i] = workflow.ExecuteActivity(ctx, acts.DestroyNode, cfg.Ref(), n)
		}
		for i, f := range futures {
			if err := f.Get(ctx, nil); err != nil {
				return res, fmt.Errorf("destroy node %d: %w", batch[i].Index, err)
			}
			res.Destroyed = append(res.Destroyed, batch[i])
			t.done(ctx)
			t.event(ctx, batch[i].Index, "node %d destroyed", batch[i].Index)
		}
	}

	t.step(ctx, "create", len(create))
	for _, batch := range deploy.Batches(create, parallel) {
		futures := make([]workflow.Future, len(batch))
		for i, idx := range batch {
			t.event(ctx, idx, "creating node %d", idx)
			futures[i] = workflow.ExecuteActivity(ctx, acts.CreateNode, cfg.Ref(), idx)
		}
		for i, f := range futures {
			var n deploy.Node
			if err := f.Get(ctx, &n); err != nil {
				return res, fmt.Errorf("create node %d: %w", batch[i], err)
			}
			res.Created = append(res.Created, n)
			t.done(ctx)
			t.event(ctx, n.Index, "node %d up at %s (agent %s)", n.Index, n.Address, n.AgentURL)
		}
	}
	if len(res.Created) > 0 && workflow.GetVersion(ctx, changeConverge, workflow.DefaultVersion, 1) == 1 {
		if err := converge(ctx, t, cfg, inv.State, &res); err != nil {
			return res, err
		}
	}
	t.step(ctx, "done", 0)
	return res, nil
}

// changeCycleBound: cycle refuses to take a serving node out while
// repair.max_unavailable nodes are out of service already.
const changeCycleBound = "cycle-max-unavailable"

// cycleBound refuses to cycle node index when, with it out of service, more
// than repair.max_unavailable of the cluster's nodes would be (a node
// already out of service may always be cycled: that loses nothing).
func cycleBound(ctx workflow.Context, t *tracker, cfg deploy.Config, index int) error {
	insp, err := inspect(ctx, t, cfg)
	if err != nil {
		return err
	}
	count := max(insp.state.Count, len(insp.state.Nodes))
	var out []string
	serving := false
	seen := map[int]bool{}
	for _, h := range insp.seen {
		seen[h.Index] = true
		switch {
		case h.Index == index:
			serving = h.Healthy() && h.Serving != ""
		case h.Index < count && !h.Healthy():
			out = append(out, fmt.Sprintf("node %d (%s)", h.Index, deploy.RepairProblem(h)))
		}
	}
	for i := range count {
		if !seen[i] {
			out = append(out, fmt.Sprintf("node %d (missing)", i))
		}
	}
	if limit := cfg.Repair.Unavailable(count); serving && len(out)+1 > limit {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"cycle %d: %d of %d nodes are out of service already (%s); taking node %d out too would exceed repair.max_unavailable %d: run `dflow repair` first, or raise repair.max_unavailable",
			index, len(out), count, strings.Join(out, ", "), index, limit), activities.ErrBadInput, nil)
	}
	return nil
}

// converge rolls the cluster's current release out to the nodes res
// created, as a repair does; with no release yet it says so.
func converge(ctx workflow.Context, t *tracker, cfg deploy.Config, st deploy.State, res *ProvisionResult) error {
	cur, ok := st.CurrentRelease()
	if !ok {
		t.event(ctx, -1, "the cluster has no release yet: the new nodes serve nothing until `dflow deploy`")
		return nil
	}
	res.Release, res.Version = cur.ID, cur.Version
	t.event(ctx, -1, "starting release %d (version %s) on %s", cur.ID, deploy.ShortVersion(cur.Version), nodeList(res.Created))
	out, err := newRollout(t, cfg, cur, decideNodeSteps(ctx)).run(ctx, res.Created)
	res.Provisioned = out
	if err != nil {
		return fmt.Errorf("bring the new nodes to release %d (version %s): %w", cur.ID, deploy.ShortVersion(cur.Version), err)
	}
	return nil
}
