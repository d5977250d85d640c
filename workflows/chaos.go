package workflows

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/workflow"
)

// ChaosRampageID is the ID of `chaos-monkey --rampage`'s workflow.
func ChaosRampageID(cfg deploy.Config) string { return LockID(cfg) + "-chaos" }

// ChaosRequest asks chaos-monkey to destroy one random healthy node.
type ChaosRequest struct {
	Config deploy.Config `json:"config"`
	// Seed makes the pick reproducible (0: random).
	Seed int64 `json:"seed,omitempty"`
	// MinHealthy: kill only when at least MinHealthy healthy nodes remain
	// afterwards. Negative: the default, DefaultMinHealthy.
	MinHealthy int `json:"min_healthy"`
	// DryRun names the victim without touching it.
	DryRun bool   `json:"dry_run,omitempty"`
	Who    string `json:"who"`
}

// changeChaosBound: repair.max_unavailable raises --min-healthy to
// count - max_unavailable (runs recorded before it do not).
const changeChaosBound = "chaos-max-unavailable"

// DefaultMinHealthy is --min-healthy's default for a cluster of count
// nodes: count-1 (only a whole cluster is attacked, one node at a time),
// and at least 1 (a one-node cluster is never attacked).
func DefaultMinHealthy(count int) int { return max(count-1, 1) }

// ChaosResult is what chaos-monkey did.
type ChaosResult struct {
	Healthy    []int  `json:"healthy"` // indices of the healthy nodes before the kill
	MinHealthy int    `json:"min_healthy"`
	Victim     *int   `json:"victim,omitempty"` // the index picked (nil: none)
	Node       string `json:"node,omitempty"`   // its node ID
	Killed     bool   `json:"killed"`
	DryRun     bool   `json:"dry_run,omitempty"`
	// Skipped says why nothing was killed.
	Skipped string             `json:"skipped,omitempty"`
	Record  deploy.ChaosRecord `json:"record,omitzero"`
}

// Chaos destroys one random healthy node through the VM backend and
// records the kill in the Store (repair records when the cluster is whole
// and healthy again). It refuses when the kill would leave fewer than
// MinHealthy healthy nodes.
func Chaos(ctx workflow.Context, req ChaosRequest) (ChaosResult, error) {
	var res ChaosResult
	t, release, err := beginOp(ctx, "chaos-monkey", req.Config)
	if err != nil {
		return res, err
	}
	defer release()
	cfg := req.Config
	res.DryRun = req.DryRun
	t.step(ctx, "verify", 0)
	insp, err := inspect(ctx, t, cfg)
	if err != nil {
		return res, err
	}
	count := insp.state.Count
	if count == 0 {
		count = len(insp.state.Nodes)
	}
	res.MinHealthy = req.MinHealthy
	if res.MinHealthy < 0 {
		res.MinHealthy = DefaultMinHealthy(count)
	}
	bound := ""
	if workflow.GetVersion(ctx, changeChaosBound, workflow.DefaultVersion, 1) == 1 {
		// repair.max_unavailable bounds chaos too: never below it.
		if floor := count - cfg.Repair.Unavailable(count); res.MinHealthy < floor {
			res.MinHealthy = floor
			bound = fmt.Sprintf(" (repair.max_unavailable %d of %d nodes)", cfg.Repair.Unavailable(count), count)
		}
	}
	var candidates []deploy.NodeHealth
	res.Healthy = []int{}
	for _, h := range insp.seen {
		if h.Recorded && h.Healthy() {
			candidates = append(candidates, h)
			res.Healthy = append(res.Healthy, h.Index)
		}
	}
	if len(candidates) == 0 || len(candidates)-1 < res.MinHealthy {
		res.Skipped = fmt.Sprintf("%d of %d nodes are healthy: a kill would leave %d, fewer than --min-healthy %d%s", len(candidates), count, max(len(candidates)-1, 0), res.MinHealthy, bound)
		t.event(ctx, -1, "no kill: %s", res.Skipped)
		t.step(ctx, "done", 0)
		return res, nil
	}
	seed := req.Seed
	if seed == 0 {
		// A random seed, recorded in the history: a replay picks the same.
		if err := workflow.SideEffect(ctx, func(workflow.Context) any { return rand.Int64() }).Get(&seed); err != nil {
			return res, fmt.Errorf("chaos-monkey: pick a seed: %w", err)
		}
	}
	r := rand.New(rand.NewPCG(uint64(seed), 0x6466_6c6f_77))
	victim := candidates[r.IntN(len(candidates))]
	res.Victim, res.Node = &victim.Index, victim.Node.ID
	if req.DryRun {
		t.event(ctx, victim.Index, "dry run: would destroy node %d (%s, %s); %d healthy, --min-healthy %d", victim.Index, victim.Node.ID, victim.Node.Address, len(candidates), res.MinHealthy)
		t.step(ctx, "done", 0)
		return res, nil
	}
	t.step(ctx, "kill", 1)
	info := workflow.GetInfo(ctx)
	rec := deploy.ChaosRecord{At: workflow.Now(ctx).UTC(), Index: victim.Index, NodeID: victim.Node.ID, Address: victim.Node.Address,
		Workflow: info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID}
	t.event(ctx, victim.Index, "destroying node %d (%s, %s)", victim.Index, victim.Node.ID, victim.Node.Address)
	nctx := nodeOptions(ctx)
	if err := workflow.ExecuteActivity(nctx, acts.DestroyNode, cfg.Ref(), victim.Node).Get(ctx, nil); err != nil {
		return res, failed(fmt.Sprintf("destroy node %d", victim.Index), err)
	}
	res.Killed, res.Record = true, rec
	if err := workflow.ExecuteActivity(nctx, acts.RecordChaos, cfg.Ref(), rec).Get(ctx, nil); err != nil {
		return res, failed("record the kill", err)
	}
	t.done(ctx)
	t.event(ctx, victim.Index, "node %d destroyed; `dflow repair` (or repair --watch) brings it back", victim.Index)
	t.step(ctx, "done", 0)
	return res, nil
}

// RampageRequest asks for a kill every Interval until cancelled.
type RampageRequest struct {
	Chaos    ChaosRequest  `json:"chaos"`
	Interval time.Duration `json:"interval"`
	// Rounds counts the rounds so far, across continue-as-new.
	Rounds int `json:"rounds,omitempty"`
	// MaxRounds ends the rampage after that many rounds (0: never).
	MaxRounds int              `json:"max_rounds,omitempty"`
	Progress  *deploy.Progress `json:"progress,omitempty"`
}

// RampageResult is what a rampage did (when MaxRounds ends it).
type RampageResult struct {
	Rounds  int `json:"rounds"`
	Kills   int `json:"kills"`
	Skipped int `json:"skipped"`
}

// ChaosRampage runs `chaos-monkey --rampage` on the watch loop (watch.go):
// a Chaos kill every Interval, each a child workflow under the cluster
// lock, so never while a deploy, rollback or repair runs (that round is
// skipped).
func ChaosRampage(ctx workflow.Context, req RampageRequest) (RampageResult, error) {
	var res RampageResult
	t, err := newWatchTracker(ctx, "chaos-monkey --rampage", req.Progress, req.Interval)
	if err != nil {
		return res, err
	}
	cfg := req.Chaos.Config
	t.step(ctx, "rampaging", 0)
	if req.Rounds == 0 {
		t.event(ctx, -1, "a kill every %s on cluster %s", req.Interval, cfg.Name)
	}
	loop := watchLoop{interval: req.Interval, rounds: &req.Rounds, maxRounds: req.MaxRounds, next: func() error {
		req.Progress = carried(t)
		return workflow.NewContinueAsNewError(ctx, ChaosRampage, req)
	}}
	err = watch(ctx, loop, func(round int) {
		res.Rounds++
		creq := req.Chaos
		if creq.Seed != 0 {
			creq.Seed += int64(round)
		}
		var cr ChaosResult
		err := onLock(ctx, cfg, "chaos-monkey (rampage)", creq.Who).run(Chaos, creq, &cr)
		switch {
		case lockHeld(err):
			res.Skipped++
			t.event(ctx, -1, "round %d: another operation holds the cluster lock (%s): no kill", round, LockID(cfg))
		case err != nil:
			t.event(ctx, -1, "round %d: chaos failed: %v", round, err)
		case cr.Skipped != "":
			res.Skipped++
			t.event(ctx, -1, "round %d: no kill: %s", round, cr.Skipped)
		case cr.Killed:
			res.Kills++
			t.event(ctx, *cr.Victim, "round %d: destroyed node %d (%s)", round, *cr.Victim, cr.Node)
		case cr.Victim != nil:
			t.event(ctx, *cr.Victim, "round %d: dry run: would destroy node %d (%s)", round, *cr.Victim, cr.Node)
		}
	})
	return res, err
}
