package workflows

import (
	"fmt"
	"strings"

	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/workflow"
)

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
	plan := deploy.PlanRepair(insp.state.Count, insp.seen, hasCur)
	res.Plan = plan
	for _, n := range plan.Notes {
		t.event(ctx, -1, "%s", n)
	}
	info := workflow.GetInfo(ctx)
	rec := deploy.RepairRecord{Workflow: info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID}
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

// heal carries out plan: destroy, create, provision, verify again.
func heal(ctx workflow.Context, t *tracker, cfg deploy.Config, plan deploy.RepairPlan, insp inspection, cur deploy.Release, hasCur bool, res *RepairResult) error {
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
		return err
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
	res.Created = nil
	for _, n := range created {
		if n.AgentURL != "" {
			res.Created = append(res.Created, n)
		}
	}
	if err != nil {
		return err
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
		res.Provisioned = outcomes
		if err != nil {
			return err
		}
	}
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
	err = insp.steps.forEach(ctx, len(targets), parallel, func(ctx workflow.Context, i int) error {
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
	var s []string
	for _, n := range nodes {
		s = append(s, fmt.Sprint(n.Index))
	}
	if len(s) == 1 {
		return "node " + s[0]
	}
	return "nodes " + strings.Join(s, ", ")
}
