package workflows

import (
	"fmt"
	"slices"
	"strings"

	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// changeRepairGuard: repair tells a version fault from node faults and
// takes at most repair.max_unavailable serving nodes out at once. Runs
// recorded before it plan as before (everything at once, every failing
// node a node fault).
const changeRepairGuard = "repair-guard"

// ErrVersionFault is the failure type of a repair that found the current
// release unhealthy on most of its nodes: nothing was destroyed.
const ErrVersionFault = "VersionFault"

// repairPolicy is the one workflow.GetVersion call for changeRepairGuard:
// the policy PlanRepair decides by in this run.
func repairPolicy(ctx workflow.Context, cfg deploy.Config, st deploy.State) deploy.RepairPolicy {
	var pol deploy.RepairPolicy
	if cur, ok := st.CurrentRelease(); ok {
		pol.Current = &cur
	}
	if workflow.GetVersion(ctx, changeRepairGuard, workflow.DefaultVersion, 1) == 1 {
		pol.MaxUnavailable = cfg.Repair.Unavailable(st.Count)
		pol.VersionFaults = true
	}
	return pol
}

// RepairRequest asks for one repair round.
type RepairRequest struct {
	Config deploy.Config `json:"config"`
	Who    string        `json:"who"`
}

// RepairResult is what a repair round saw and did.
type RepairResult struct {
	Seen        []deploy.NodeHealth `json:"seen"`
	Plan        deploy.RepairPlan   `json:"plan"`
	Destroyed   []deploy.Node       `json:"destroyed,omitempty"`
	Created     []deploy.Node       `json:"created,omitempty"`
	Provisioned []NodeOutcome       `json:"provisioned,omitempty"`
	Version     string              `json:"version,omitempty"`
	// Whole: afterwards every node up to the desired count is live and
	// healthy.
	Whole bool `json:"whole"`
	// Recovered counts the chaos-monkey kills this round marked recovered.
	Recovered int `json:"recovered,omitempty"`
}

// Repair verifies every node and heals the cluster: it destroys the nodes
// that are gone, whose agent does not answer, whose serving process died,
// whose executable is not the one built, or that fail verify; creates the
// nodes missing up to the desired count; and starts the current release on
// the new nodes through the zero-downtime path a deploy uses. The decision
// is deploy.PlanRepair. A round that leaves the cluster whole and healthy
// marks chaos-monkey's kills recovered.
func Repair(ctx workflow.Context, req RepairRequest) (RepairResult, error) {
	var res RepairResult
	t, release, err := beginOp(ctx, "repair", req.Config)
	if err != nil {
		return res, err
	}
	defer release()
	cfg := req.Config
	nctx := nodeOptions(ctx)
	t.step(ctx, "verify", 0)
	insp, err := inspect(ctx, t, cfg)
	if err != nil {
		return res, err
	}
	res.Seen = insp.seen
	cur, hasCur := insp.state.CurrentRelease()
	plan := deploy.PlanRepair(insp.state.Count, insp.seen, repairPolicy(ctx, cfg, insp.state))
	res.Plan = plan
	for _, n := range plan.Notes {
		t.event(ctx, -1, "%s", n)
	}
	info := workflow.GetInfo(ctx)
	rec := deploy.RepairRecord{Workflow: info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID}
	if plan.VersionFault != "" {
		// Replacing nodes cannot fix a bad release: destroy nothing.
		t.event(ctx, -1, "%s; no node was destroyed", plan.VersionFault)
		rec.At, rec.Error = workflow.Now(ctx).UTC(), plan.VersionFault
		if err := workflow.ExecuteActivity(nctx, acts.RecordRepair, cfg.Ref(), rec, true).Get(ctx, &res.Recovered); err != nil {
			return res, failed("record the repair", err)
		}
		return res, temporal.NewNonRetryableApplicationError(plan.VersionFault, ErrVersionFault, nil)
	}
	if plan.Empty() {
		res.Whole = insp.whole()
		t.event(ctx, -1, "%d of %d nodes healthy: nothing to repair", insp.healthy(), insp.state.Count)
		rec.At, rec.Whole = workflow.Now(ctx).UTC(), res.Whole
		if err := workflow.ExecuteActivity(nctx, acts.RecordRepair, cfg.Ref(), rec, false).Get(ctx, &res.Recovered); err != nil {
			return res, failed("record the repair", err)
		}
		t.step(ctx, "done", 0)
		return res, nil
	}

	err = heal(ctx, t, cfg, plan, insp, cur, hasCur, &res)
	rec.At = workflow.Now(ctx).UTC()
	rec.Destroyed, rec.Whole = plan.Destroy, res.Whole && err == nil
	for _, n := range res.Created {
		rec.Created = append(rec.Created, n.Index)
	}
	for _, o := range res.Provisioned {
		if o.Serving == cur.InstanceID() {
			rec.Provisioned = append(rec.Provisioned, o.Index)
		}
	}
	slices.Sort(rec.Provisioned)
	rec.Version = res.Version
	if err != nil {
		rec.Error = err.Error()
	}
	dctx, _ := workflow.NewDisconnectedContext(nctx)
	if rerr := workflow.ExecuteActivity(dctx, acts.RecordRepair, cfg.Ref(), rec, true).Get(dctx, &res.Recovered); rerr != nil && err == nil {
		err = failed("record the repair", rerr)
	}
	if err != nil {
		return res, err
	}
	if res.Recovered > 0 {
		t.event(ctx, -1, "the cluster is whole and healthy again: %d chaos kill(s) recovered", res.Recovered)
	}
	t.step(ctx, "done", 0)
	return res, nil
}

// heal carries out plan one batch after another (all at once when it has
// no batches), then verifies what changed again.
func heal(ctx workflow.Context, t *tracker, cfg deploy.Config, plan deploy.RepairPlan, insp inspection, cur deploy.Release, hasCur bool, res *RepairResult) error {
	var targets []deploy.Node
	batches := plan.Batches
	if batches == nil {
		batches = [][]int{nil} // nil: every index of the plan
	}
	for b, batch := range batches {
		part := plan
		if batch != nil {
			part = planPart(plan, batch)
			if len(batches) > 1 {
				t.event(ctx, -1, "batch %d of %d: %s (at most %d serving node(s) out at once: repair.max_unavailable)", b+1, len(batches), nodeIndexList(batch), cfg.Repair.Unavailable(insp.state.Count))
			}
		}
		ts, err := healBatch(ctx, t, cfg, part, insp, cur, hasCur, res)
		targets = append(targets, ts...)
		if err != nil {
			return err
		}
	}
	return verifyHealed(ctx, t, cfg, plan, insp, targets, res)
}

// planPart is the part of plan for the indices in batch.
func planPart(plan deploy.RepairPlan, batch []int) deploy.RepairPlan {
	var part deploy.RepairPlan
	for _, a := range plan.Destroy {
		if slices.Contains(batch, a.Index) {
			part.Destroy = append(part.Destroy, a)
		}
	}
	for _, i := range plan.Create {
		if slices.Contains(batch, i) {
			part.Create = append(part.Create, i)
		}
	}
	for _, i := range plan.Provision {
		if slices.Contains(batch, i) {
			part.Provision = append(part.Provision, i)
		}
	}
	return part
}

// healBatch destroys, creates and provisions what plan (one batch) says,
// and returns the nodes it provisioned.
func healBatch(ctx workflow.Context, t *tracker, cfg deploy.Config, plan deploy.RepairPlan, insp inspection, cur deploy.Release, hasCur bool, res *RepairResult) ([]deploy.Node, error) {
	nctx := nodeOptions(ctx)
	parallel := max(cfg.Nodes.Parallel, 1)
	t.step(ctx, "destroy", len(plan.Destroy))
	err := insp.steps.forEach(ctx, len(plan.Destroy), parallel, func(ctx workflow.Context, i int) error {
		a := plan.Destroy[i]
		t.event(ctx, a.Index, "node %d: %s: destroying it", a.Index, a.Reason)
		if err := workflow.ExecuteActivity(nctx, acts.DestroyNode, cfg.Ref(), a.Node).Get(ctx, nil); err != nil {
			return failed(fmt.Sprintf("destroy node %d", a.Index), err)
		}
		res.Destroyed = append(res.Destroyed, a.Node)
		t.done(ctx)
		return nil
	})
	if err != nil {
		return nil, err
	}
	t.step(ctx, "create", len(plan.Create))
	created := make([]deploy.Node, len(plan.Create))
	err = insp.steps.forEach(ctx, len(plan.Create), parallel, func(ctx workflow.Context, i int) error {
		idx := plan.Create[i]
		t.event(ctx, idx, "creating node %d", idx)
		if err := workflow.ExecuteActivity(nctx, acts.CreateNode, cfg.Ref(), idx).Get(ctx, &created[i]); err != nil {
			return failed(fmt.Sprintf("create node %d", idx), err)
		}
		t.event(ctx, idx, "node %d up at %s", idx, created[i].Address)
		t.done(ctx)
		return nil
	})
	for _, n := range created {
		if n.AgentURL != "" {
			res.Created = append(res.Created, n)
		}
	}
	if err != nil {
		return nil, err
	}
	nodes := map[int]deploy.Node{}
	for _, h := range insp.seen {
		nodes[h.Index] = h.Node
	}
	for _, n := range created {
		nodes[n.Index] = n
	}
	var targets []deploy.Node
	for _, idx := range plan.Provision {
		targets = append(targets, nodes[idx])
	}
	if hasCur && len(targets) > 0 {
		res.Version = cur.Version
		t.event(ctx, -1, "starting release %d (version %s) on %s", cur.ID, deploy.ShortVersion(cur.Version), nodeList(targets))
		outcomes, err := newRollout(t, cfg, cur, insp.steps).run(ctx, targets)
		res.Provisioned = append(res.Provisioned, outcomes...)
		if err != nil {
			return targets, err
		}
	}
	return targets, nil
}

// verifyHealed verifies the provisioned targets again (the rest was
// healthy when inspected) and sets res.Whole.
func verifyHealed(ctx workflow.Context, t *tracker, cfg deploy.Config, plan deploy.RepairPlan, insp inspection, targets []deploy.Node, res *RepairResult) error {
	nctx := nodeOptions(ctx)
	parallel := max(cfg.Nodes.Parallel, 1)
	// Verify what changed again; the rest was healthy when inspected.
	t.step(ctx, "verify", len(targets))
	healthy := map[int]bool{}
	for _, h := range insp.seen {
		healthy[h.Index] = h.Healthy() && h.Recorded
	}
	for _, a := range plan.Destroy {
		healthy[a.Index] = false
	}
	for _, n := range res.Created {
		healthy[n.Index] = true // its agent answered: CreateNode waits for it
	}
	err := insp.steps.forEach(ctx, len(targets), parallel, func(ctx workflow.Context, i int) error {
		n := targets[i]
		var v deploy.Verdict
		if err := workflow.ExecuteActivity(nctx, acts.VerifyNode, cfg.Ref(), n).Get(ctx, &v); err != nil {
			return failed(fmt.Sprintf("verify node %d", n.Index), err)
		}
		healthy[n.Index] = v.Healthy()
		if !v.Healthy() {
			t.event(ctx, n.Index, "node %d: health %.0f < threshold %.0f after the repair: %s", n.Index, v.Health, v.Threshold, v.Detail)
		}
		t.done(ctx)
		return nil
	})
	if err != nil {
		return err
	}
	res.Whole = true
	for i := 0; i < insp.state.Count; i++ {
		res.Whole = res.Whole && healthy[i]
	}
	return nil
}

func nodeList(nodes []deploy.Node) string {
	var idx []int
	for _, n := range nodes {
		idx = append(idx, n.Index)
	}
	return nodeIndexList(idx)
}

func nodeIndexList(idx []int) string {
	var s []string
	for _, i := range idx {
		s = append(s, fmt.Sprint(i))
	}
	if len(s) == 1 {
		return "node " + s[0]
	}
	return "nodes " + strings.Join(s, ", ")
}
