package workflows

import (
	"strings"
	"time"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/deploy"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// The cluster lock: one operation that changes a cluster at a time. The
// workflow ID is the lock (LockID), so Temporal itself refuses a second
// one; with the etcd store a lease in the Store is held too (lockCluster),
// for operators who share an etcd but not a Temporal. Watch loops and
// schedules run what they change as a child workflow on the lock (onLock).

// LockID is the cluster lock: the workflow ID every mutating operation on
// cfg's cluster runs under (controlplane's StartMutating starts them under
// it), so Temporal itself refuses a second one while one runs.
func LockID(cfg deploy.Config) string { return "dflow-" + cfg.Name }

// beginOp starts a mutating workflow: its progress tracker (op names it),
// then the store's cluster lock, which the returned function releases.
func beginOp(ctx workflow.Context, op string, cfg deploy.Config) (*tracker, func(), error) {
	t, err := newTracker(ctx, op)
	if err != nil {
		return nil, nil, err
	}
	release, err := lockCluster(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return t, release, nil
}

// lockCluster takes the store's cluster lock when the store holds one
// (etcd: operators who share an etcd but not a Temporal), keeps it alive
// for as long as the workflow runs, and returns the function that releases
// it. With any other store it does nothing: the workflow ID is the lock.
func lockCluster(ctx workflow.Context, cfg deploy.Config) (release func(), err error) {
	if !strings.HasPrefix(cfg.Backends.Store, "etcd://") {
		return func() {}, nil
	}
	info := workflow.GetInfo(ctx)
	holder := info.WorkflowType.Name + " " + info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID
	var lease int64
	if err := workflow.ExecuteActivity(nodeOptions(ctx), acts.AcquireClusterLock, cfg.Ref(), holder).Get(ctx, &lease); err != nil {
		return nil, failed("cluster lock", err)
	}
	kctx, cancel := workflow.WithCancel(ctx)
	keep := workflow.ExecuteActivity(workflow.WithActivityOptions(kctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * 24 * time.Hour,
		HeartbeatTimeout:    5 * activities.HeartbeatEvery,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 5 * time.Second},
	}), acts.KeepClusterLock, cfg.Ref(), lease)
	return func() {
		cancel()
		_ = keep.Get(kctx, nil)
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		_ = workflow.ExecuteActivity(nodeOptions(dctx), acts.ReleaseClusterLock, cfg.Ref(), lease).Get(dctx, nil)
	}, nil
}

// locked runs a child workflow under the cluster lock.
type locked struct {
	ctx workflow.Context
}

// onLock returns a runner of child workflows whose ID is the cluster lock:
// when another operation holds it, starting the child fails (lockHeld).
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

// lockHeld tells whether a child workflow on the cluster lock (onLock) did
// not start because another operation holds the lock.
func lockHeld(err error) bool { return temporal.IsWorkflowExecutionAlreadyStartedError(err) }
