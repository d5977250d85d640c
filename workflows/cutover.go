package workflows

import (
	"fmt"

	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/workflow"
)

// A node's cutover: the zero-downtime switch of one node to a release
// (DESIGN §6). The new version starts beside the old one, passes its
// readiness gate, takes the node's public port, and then the old one
// drains and stops (in restart mode the old one stops first). Every step
// is idempotent, so a resumed rollout repeats none of its effects.

// cutover moves node n to the rollout's release: start beside the old
// version, gate, switch, drain and stop the old (in restart mode: stop the
// old first). The drain and stop of the old version run in bg, which since
// changeNodeSteps lets them trail the node's turn.
func (r *rollout) cutover(ctx workflow.Context, n deploy.Node, bg *behind) (NodeOutcome, error) {
	t, cfg, rel := r.t, r.cfg, r.rel
	o := NodeOutcome{Index: n.Index, BeganAt: workflow.Now(ctx)}
	nctx := nodeStepOptions(ctx, cfg)
	id := rel.InstanceID()
	// A stuck step that the operator skips leaves the node out (o.LeftOut).
	leave := func(err error) bool {
		why, ok := leftOut(err)
		o.LeftOut = why
		return ok
	}
	var list api.ProcessList
	err := r.nodeStep(ctx, n.Index, "list", func(ctx workflow.Context) error {
		return r.steps.quick(ctx, nctx, acts.NodeProcesses, cfg.Ref(), n).Get(ctx, &list)
	})
	if leave(err) {
		return o, nil
	}
	if err != nil {
		return o, failed(fmt.Sprintf("node %d", n.Index), err)
	}
	o.Previous, o.Serving = list.Serving, list.Serving
	for _, p := range list.Processes {
		if p.ID == list.Serving {
			o.Version = p.Version
			if rel.Kind != deploy.ReleaseRestart && p.Version == rel.Version && p.Digest == rel.Digest && p.State == api.StateServing {
				o.Skipped = true
				t.event(ctx, n.Index, "node %d serves %s already", n.Index, deploy.ShortVersion(rel.Version))
				return o, nil
			}
		}
	}
	var others []string
	for _, p := range list.Processes {
		if p.ID != id && p.Alive() {
			others = append(others, p.ID)
		}
	}
	stopOthers := func(ctx workflow.Context) error {
		for _, old := range others {
			t.event(ctx, n.Index, "node %d: draining and stopping %s", n.Index, old)
			err := r.nodeStep(ctx, n.Index, "stop", func(ctx workflow.Context) error {
				return workflow.ExecuteActivity(nodeStepOptions(ctx, cfg), acts.StopOnNode, cfg.Ref(), n, old, false).Get(ctx, nil)
			})
			if _, ok := leftOut(err); ok {
				t.event(ctx, n.Index, "node %d: %s was not stopped (skip-node); it stops with the node's next cutover or `dflow repair`", n.Index, old)
				return err
			}
			if err != nil {
				return failed(fmt.Sprintf("node %d", n.Index), err)
			}
		}
		return nil
	}
	if cfg.App.Mode == deploy.ModeRestart {
		if err := stopOthers(ctx); leave(err) {
			return o, nil
		} else if err != nil {
			return o, err
		}
		o.Serving = ""
	}
	t.event(ctx, n.Index, "node %d: starting %s", n.Index, id)
	var started backends.Process
	err = r.nodeStep(ctx, n.Index, "start", func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(nctx, acts.StartOnNode, cfg.Ref(), n, rel).Get(ctx, &started)
	})
	if leave(err) {
		return o, nil
	}
	if err != nil {
		return o, failed("deploy stopped", err)
	}
	if started.ListenWarning != "" {
		o.Warning = fmt.Sprintf("node %d: %s", n.Index, started.ListenWarning)
	}
	t.event(ctx, n.Index, "node %d: %s is ready; switching", n.Index, id)
	err = r.nodeStep(ctx, n.Index, "switch", func(ctx workflow.Context) error {
		return r.steps.quick(ctx, nctx, acts.SwitchOnNode, cfg.Ref(), n, id).Get(ctx, nil)
	})
	if leave(err) {
		return o, nil
	}
	if err != nil {
		return o, failed(fmt.Sprintf("node %d", n.Index), err)
	}
	o.Serving, o.Version, o.SwitchedAt = id, rel.Version, workflow.Now(ctx)
	if cfg.App.Mode != deploy.ModeRestart {
		// Left out while stopping the old version: the node serves the
		// new one already, so the rollout goes on.
		stopBehind := func(ctx workflow.Context) error {
			if err := stopOthers(ctx); err != nil {
				if _, ok := leftOut(err); !ok {
					return err
				}
			}
			return nil
		}
		if err := bg.run(ctx, stopBehind); err != nil {
			return o, err
		}
	}
	t.event(ctx, n.Index, "node %d serves %s", n.Index, deploy.ShortVersion(rel.Version))
	return o, nil
}
