package workflows

import (
	"fmt"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/workflow"
)

// BuildRequest asks to build and test the target without deploying it.
type BuildRequest struct {
	Config   deploy.Config `json:"config"`
	BuildEnv []string      `json:"build_env,omitempty"`
	// CommitHash builds that commit (a clean worktree), not the working tree.
	CommitHash string `json:"commit_hash,omitempty"`
}

// Build builds and tests the target and stores its bundle in the control
// plane's artifact store (what `dflow copy --latest` ships).
func Build(ctx workflow.Context, req BuildRequest) (deploy.Target, error) {
	var target deploy.Target
	t, err := newTracker(ctx, "build")
	if err != nil {
		return target, err
	}
	t.step(ctx, "build", 1)
	t.event(ctx, -1, "building %s (log: %s)", req.Config.PackagePath(), activities.BuildLog(req.Config))
	if err := workflow.ExecuteActivity(buildOptions(ctx), acts.Build, req.Config.Ref(), activities.BuildSpec{Env: req.BuildEnv, Commit: req.CommitHash}).Get(ctx, &target); err != nil {
		return target, failed("build", err)
	}
	t.done(ctx)
	t.step(ctx, "done", 0)
	return target, nil
}

// CopyRequest asks to make every node hold a bundle: the current release's,
// the newest build's (Latest) or a version's.
type CopyRequest struct {
	Config  deploy.Config `json:"config"`
	Version string        `json:"version,omitempty"`
	Latest  bool          `json:"latest,omitempty"`
	// Force sends the bundle even to nodes that have it, and has them
	// verify it again (--through-cache).
	Force bool `json:"force,omitempty"`
}

// CopyResult tells what a copy sent to each node.
type CopyResult struct {
	Target deploy.Target `json:"target"`
	Nodes  []NodeOutcome `json:"nodes"`
}

// Copy makes every node hold a bundle, sha256-verified on arrival; a node
// that has it already is sent nothing unless Force.
func Copy(ctx workflow.Context, req CopyRequest) (CopyResult, error) {
	var res CopyResult
	t, release, err := beginOp(ctx, "copy", req.Config)
	if err != nil {
		return res, err
	}
	defer release()
	cfg := req.Config
	nctx := nodeOptions(ctx)
	var picked deploy.Release
	if err := workflow.ExecuteActivity(nctx, acts.PickTarget, cfg.Ref(), activities.Pick{Kind: "copy", Version: req.Version, Latest: req.Latest}).Get(ctx, &picked); err != nil {
		return res, failed("copy", err)
	}
	res.Target = picked.Target
	var nodes []deploy.Node
	if err := workflow.ExecuteActivity(nctx, acts.Nodes, cfg.Ref()).Get(ctx, &nodes); err != nil {
		return res, failed("copy", err)
	}
	res.Nodes = make([]NodeOutcome, len(nodes))
	t.step(ctx, "copy", len(nodes))
	err = decideNodeSteps(ctx).forEach(ctx, len(nodes), cfg.Nodes.Parallel, func(ctx workflow.Context, i int) error {
		n := nodes[i]
		var cr activities.CopyResult
		if err := workflow.ExecuteActivity(copyOptions(ctx), acts.CopyToNode, cfg.Ref(), n, picked.Target, req.Force).Get(ctx, &cr); err != nil {
			return failed(fmt.Sprintf("copy to node %d", n.Index), err)
		}
		res.Nodes[i] = NodeOutcome{Index: n.Index, Address: n.Address, Sent: cr.Sent}
		t.done(ctx)
		t.event(ctx, n.Index, "node %d: %s sent", n.Index, deploy.HumanBytes(cr.Sent))
		return nil
	})
	if err != nil {
		return res, err
	}
	t.step(ctx, "done", 0)
	return res, nil
}

// StopRequest asks to stop the serving version on every node (All: every
// version), draining first unless Now.
type StopRequest struct {
	Config deploy.Config `json:"config"`
	All    bool          `json:"all,omitempty"`
	Now    bool          `json:"now,omitempty"`
}

// StoppedOn is what a stop did on one node.
type StoppedOn struct {
	Index   int      `json:"index"`
	Stopped []string `json:"stopped"`
}

// Stop stops the serving version on every node (with All, every version
// that runs); the nodes' public ports then answer 503 until `dflow start`.
func Stop(ctx workflow.Context, req StopRequest) ([]StoppedOn, error) {
	var res []StoppedOn
	t, release, err := beginOp(ctx, "stop", req.Config)
	if err != nil {
		return res, err
	}
	defer release()
	cfg := req.Config
	nctx := nodeOptions(ctx)
	var nodes []deploy.Node
	if err := workflow.ExecuteActivity(nctx, acts.Nodes, cfg.Ref()).Get(ctx, &nodes); err != nil {
		return res, failed("stop", err)
	}
	res = make([]StoppedOn, len(nodes))
	t.step(ctx, "stop", len(nodes))
	err = decideNodeSteps(ctx).forEach(ctx, len(nodes), cfg.Nodes.Parallel, func(ctx workflow.Context, i int) error {
		n := nodes[i]
		res[i].Index = n.Index
		sctx := nodeStepOptions(ctx, cfg)
		var list api.ProcessList
		if err := workflow.ExecuteActivity(sctx, acts.NodeProcesses, cfg.Ref(), n).Get(ctx, &list); err != nil {
			return failed(fmt.Sprintf("node %d", n.Index), err)
		}
		for _, p := range list.Processes {
			if !p.Alive() || !req.All && p.ID != list.Serving {
				continue
			}
			t.event(ctx, n.Index, "node %d: stopping %s", n.Index, p.ID)
			if err := workflow.ExecuteActivity(sctx, acts.StopOnNode, cfg.Ref(), n, p.ID, req.Now).Get(ctx, nil); err != nil {
				return failed(fmt.Sprintf("node %d", n.Index), err)
			}
			res[i].Stopped = append(res[i].Stopped, p.ID)
		}
		t.done(ctx)
		return nil
	})
	if err != nil {
		return res, err
	}
	t.step(ctx, "done", 0)
	return res, nil
}
