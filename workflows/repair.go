package workflows

import (
	"fmt"
	"strings"
	"time"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/deploy"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// LockID is the cluster lock: the workflow ID every mutating operation on
// cfg's cluster runs under (the CLI's startMutating uses the same), so
// Temporal itself refuses a second one while one runs.
func LockID(cfg deploy.Config) string { return "dflow-" + cfg.Name }

// RepairWatchID is the ID of `repair --watch`'s workflow.
func RepairWatchID(cfg deploy.Config) string { return LockID(cfg) + "-repair" }

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

// RepairWatchRequest asks for repair rounds every Interval until cancelled.
type RepairWatchRequest struct {
	Config   deploy.Config `json:"config"`
	Interval time.Duration `json:"interval"`
	Who      string        `json:"who"`
	// Rounds counts the rounds so far, across continue-as-new.
	Rounds int `json:"rounds,omitempty"`
	// MaxRounds ends the watch after that many rounds (0: never).
	MaxRounds int `json:"max_rounds,omitempty"`
	// Progress carries the events over a continue-as-new.
	Progress *deploy.Progress `json:"progress,omitempty"`
}

// WatchResult is what a watch loop did when it ends (MaxRounds).
type WatchResult struct {
	Rounds  int `json:"rounds"`
	Repairs int `json:"repairs"`
	Skipped int `json:"skipped"`
}

// roundsPerRun bounds a watch loop's rounds per run, whatever the server
// suggests, so its history stays small.
const roundsPerRun = 200

// RepairWatch runs `repair --watch`: every Interval (a durable timer) it
// inspects the cluster (read only, outside the lock) and, when something
// needs repair, runs a Repair round as a child workflow under the cluster
// lock. While a deploy, rollback or any other operation holds the lock,
// starting the child fails and the round is skipped (standing aside). It
// continues as new when the server suggests it or every roundsPerRun rounds.
func RepairWatch(ctx workflow.Context, req RepairWatchRequest) (WatchResult, error) {
	var res WatchResult
	t, err := newWatchTracker(ctx, "repair --watch", req.Progress, req.Interval)
	if err != nil {
		return res, err
	}
	cfg := req.Config
	nctx := nodeOptions(ctx)
	t.step(ctx, "watching", 0)
	if req.Rounds == 0 {
		t.event(ctx, -1, "watching cluster %s every %s", cfg.Name, req.Interval)
	}
	for run := 0; ; run++ {
		req.Rounds++
		res.Rounds++
		insp, err := inspect(ctx, t, cfg)
		switch {
		case err != nil:
			t.event(ctx, -1, "round %d: could not inspect the cluster: %v", req.Rounds, err)
		case !deploy.PlanRepair(insp.state.Count, insp.seen, hasCurrent(insp.state)).Empty():
			var rr RepairResult
			err := onLock(ctx, cfg, "repair (watch)", req.Who).run(Repair, RepairRequest{Config: cfg, Who: req.Who}, &rr)
			switch {
			case temporal.IsWorkflowExecutionAlreadyStartedError(err):
				res.Skipped++
				t.event(ctx, -1, "round %d: repair needed, but another operation holds the cluster lock (%s): standing aside", req.Rounds, LockID(cfg))
			case err != nil:
				t.event(ctx, -1, "round %d: repair failed: %v", req.Rounds, err)
			default:
				res.Repairs++
				t.event(ctx, -1, "round %d: %s", req.Rounds, describeRepair(rr))
			}
		case insp.whole() && unrecovered(insp.state) > 0:
			// Whole again (repaired by hand, say): close the open kills.
			rec := deploy.RepairRecord{At: workflow.Now(ctx).UTC(), Whole: true}
			var n int
			if err := workflow.ExecuteActivity(nctx, acts.RecordRepair, cfg.Ref(), rec, false).Get(ctx, &n); err != nil {
				t.event(ctx, -1, "round %d: record the recovery: %v", req.Rounds, err)
			} else if n > 0 {
				t.event(ctx, -1, "round %d: the cluster is whole and healthy: %d chaos kill(s) recovered", req.Rounds, n)
			}
		}
		if req.MaxRounds > 0 && req.Rounds >= req.MaxRounds {
			return res, nil
		}
		if err := workflow.Sleep(ctx, req.Interval); err != nil {
			return res, err
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() || run+1 >= roundsPerRun {
			p := t.p
			p.Events = lastEvents(p.Events, 50)
			req.Progress = &p
			return res, workflow.NewContinueAsNewError(ctx, RepairWatch, req)
		}
	}
}

func hasCurrent(s deploy.State) bool {
	_, ok := s.CurrentRelease()
	return ok
}

func unrecovered(s deploy.State) int {
	n := 0
	for _, c := range s.Chaos {
		if c.RecoveredAt.IsZero() {
			n++
		}
	}
	return n
}

func lastEvents(es []deploy.Event, n int) []deploy.Event {
	if len(es) > n {
		es = es[len(es)-n:]
	}
	return append([]deploy.Event(nil), es...)
}

func describeRepair(rr RepairResult) string {
	var parts []string
	for _, a := range rr.Plan.Destroy {
		parts = append(parts, fmt.Sprintf("node %d replaced (%s)", a.Index, a.Reason))
	}
	destroyed := map[int]bool{}
	for _, a := range rr.Plan.Destroy {
		destroyed[a.Index] = true
	}
	for _, n := range rr.Created {
		if !destroyed[n.Index] {
			parts = append(parts, fmt.Sprintf("node %d created", n.Index))
		}
	}
	s := strings.Join(parts, "; ")
	if rr.Version != "" {
		s += fmt.Sprintf("; serving %s", deploy.ShortVersion(rr.Version))
	}
	if rr.Whole {
		s += "; the cluster is whole and healthy"
	}
	if rr.Recovered > 0 {
		s += fmt.Sprintf(" (%d chaos kill(s) recovered)", rr.Recovered)
	}
	return s
}

// locked runs a child workflow under the cluster lock.
type locked struct {
	ctx workflow.Context
}

// onLock returns a runner of child workflows whose ID is the cluster lock:
// when another operation holds it, starting the child fails with a
// ChildWorkflowExecutionAlreadyStartedError
// (temporal.IsWorkflowExecutionAlreadyStartedError).
func onLock(ctx workflow.Context, cfg deploy.Config, command, who string) locked {
	return locked{ctx: workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:        LockID(cfg),
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		Memo:              map[string]any{"command": command, "who": who},
	})}
}

// run starts wf(arg) on the lock and waits for its result.
func (l locked) run(wf any, arg any, result any) error {
	f := workflow.ExecuteChildWorkflow(l.ctx, wf, arg)
	if err := f.GetChildWorkflowExecution().Get(l.ctx, nil); err != nil {
		return err
	}
	return f.Get(l.ctx, result)
}
