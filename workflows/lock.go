package workflows

import (
	"strings"
	"time"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

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
