package workflows

import (
	"fmt"
	"strings"
	"time"

	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/workflow"
)

// RepairWatchID is the ID of `repair --watch`'s workflow.
func RepairWatchID(cfg deploy.Config) string { return LockID(cfg) + "-repair" }

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
	// Faulty is the release whose version fault the watch reported last
	// (reported once per release), RolledBack the one it rolled back from
	// (repair.rollback_on_version_fault: once per release); both carried
	// over a continue-as-new.
	Faulty     int `json:"faulty,omitempty"`
	RolledBack int `json:"rolled_back,omitempty"`
}

// WatchResult is what a repair watch did when it ends (MaxRounds).
type WatchResult struct {
	Rounds  int `json:"rounds"`
	Repairs int `json:"repairs"`
	Skipped int `json:"skipped"`
	// Faults counts the rounds that found a version fault.
	Faults int `json:"faults,omitempty"`
}

// RepairWatch runs `repair --watch` on the watch loop (watch.go): every
// Interval it inspects the cluster (read only, outside the lock) and, when
// something needs repair, runs a Repair round as a child workflow under the
// cluster lock. While a deploy, rollback or any other operation holds the
// lock, starting the child fails and the round is skipped (standing aside).
// A version fault (the current release fails on most nodes) destroys
// nothing: it is reported (once per release) and, with
// repair.rollback_on_version_fault, rolled back from once.
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
	loop := watchLoop{interval: req.Interval, rounds: &req.Rounds, maxRounds: req.MaxRounds, next: func() error {
		req.Progress = carried(t)
		return workflow.NewContinueAsNewError(ctx, RepairWatch, req)
	}}
	err = watch(ctx, loop, func(round int) {
		res.Rounds++
		insp, err := inspect(ctx, t, cfg)
		var plan deploy.RepairPlan
		if err == nil {
			plan = deploy.PlanRepair(insp.state.Count, insp.seen, repairPolicy(ctx, cfg, insp.state))
		}
		switch {
		case err != nil:
			t.event(ctx, -1, "round %d: could not inspect the cluster: %v", round, err)
		case plan.VersionFault != "":
			res.Faults++
			cur, _ := insp.state.CurrentRelease()
			versionFaultRound(ctx, t, &req, round, cur, plan.VersionFault)
		case !plan.Empty():
			var rr RepairResult
			err := onLock(ctx, cfg, "repair (watch)", req.Who).run(Repair, RepairRequest{Config: cfg, Who: req.Who}, &rr)
			switch {
			case lockHeld(err):
				res.Skipped++
				t.event(ctx, -1, "round %d: repair needed, but another operation holds the cluster lock (%s): standing aside", round, LockID(cfg))
			case err != nil:
				t.event(ctx, -1, "round %d: repair failed: %v", round, err)
			default:
				res.Repairs++
				t.event(ctx, -1, "round %d: %s", round, describeRepair(rr))
			}
		case insp.whole() && unrecovered(insp.state) > 0:
			// Whole again (repaired by hand, say): close the open kills.
			rec := deploy.RepairRecord{At: workflow.Now(ctx).UTC(), Whole: true}
			var n int
			if err := workflow.ExecuteActivity(nctx, acts.RecordRepair, cfg.Ref(), rec, false).Get(ctx, &n); err != nil {
				t.event(ctx, -1, "round %d: record the recovery: %v", round, err)
			} else if n > 0 {
				t.event(ctx, -1, "round %d: the cluster is whole and healthy: %d chaos kill(s) recovered", round, n)
			}
		}
	})
	return res, err
}

// versionFaultRound reports a version fault of the current release (once
// per release: recorded in the store like a repair) and, when
// repair.rollback_on_version_fault is set, rolls back from it once.
func versionFaultRound(ctx workflow.Context, t *tracker, req *RepairWatchRequest, round int, cur deploy.Release, fault string) {
	cfg := req.Config
	if req.Faulty != cur.ID {
		req.Faulty = cur.ID
		t.event(ctx, -1, "round %d: %s; no node was destroyed", round, fault)
		info := workflow.GetInfo(ctx)
		rec := deploy.RepairRecord{At: workflow.Now(ctx).UTC(), Workflow: info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID, Error: fault}
		if err := workflow.ExecuteActivity(nodeOptions(ctx), acts.RecordRepair, cfg.Ref(), rec, true).Get(ctx, nil); err != nil {
			t.event(ctx, -1, "round %d: record the version fault: %v", round, err)
		}
	}
	if !cfg.Repair.RollbackOnVersionFault || req.RolledBack == cur.ID {
		return
	}
	t.event(ctx, -1, "round %d: rolling back from release %d (repair.rollback_on_version_fault)", round, cur.ID)
	var dr DeployResult
	err := onLock(ctx, cfg, "rollback (repair --watch: version fault)", req.Who).run(Deploy, DeployRequest{Config: cfg, Kind: deploy.ReleaseRollback, Who: req.Who}, &dr)
	switch {
	case lockHeld(err):
		t.event(ctx, -1, "round %d: another operation holds the cluster lock (%s): the rollback waits for the next round", round, LockID(cfg))
	case err != nil:
		req.RolledBack = cur.ID // once: a failed rollback is not tried again
		t.event(ctx, -1, "round %d: the rollback from release %d failed: %v", round, cur.ID, err)
	default:
		req.RolledBack = cur.ID
		t.event(ctx, -1, "round %d: rolled back from release %d: release %d serves version %s", round, cur.ID, dr.Release.ID, deploy.ShortVersion(dr.Release.Version))
	}
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
