package workflows

import (
	"time"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Activity options: how long each kind of step may take and how it is
// retried. Every step heartbeats (activities.HeartbeatEvery), so a dead
// worker is noticed in seconds whatever the bound.

// nodeOptions are the activity options of steps that act on one node: short
// attempts, heartbeats so a dead worker is noticed in seconds, and retries
// with backoff for everything but bad input.
func nodeOptions(ctx workflow.Context) workflow.Context {
	return stepOptions(ctx, 2*time.Minute, activities.ErrBadInput)
}

// nodeStepOptions: a start waits for the readiness gate and a stop for the
// drain and the grace period, so their bound follows the app's settings.
func nodeStepOptions(ctx workflow.Context, cfg deploy.Config) workflow.Context {
	bound := cfg.App.ReadyTimeout.D() + cfg.App.DrainTimeout.D() + cfg.App.StopGrace.D() + 2*time.Minute
	return stepOptions(ctx, bound, activities.ErrBadInput, activities.ErrGateFailed)
}

// copyOptions: copying a large bundle over a slow link takes a while.
func copyOptions(ctx workflow.Context) workflow.Context {
	return stepOptions(ctx, 30*time.Minute, activities.ErrBadInput)
}

// buildOptions: a build may take long (a cold GHC build of a big project)
// but heartbeats every second; a failed build is not retried.
func buildOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Hour,
		HeartbeatTimeout:    10 * activities.HeartbeatEvery,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			MaximumAttempts:        3,
			NonRetryableErrorTypes: []string{activities.ErrBadInput, activities.ErrBuildFailed},
		},
	})
}

// localOptions are for the quick, idempotent agent calls run as local
// activities (listing a node's versions, switching its port): retried
// like the other node steps.
func localOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: 2 * time.Minute,
		RetryPolicy:            stepRetry(activities.ErrBadInput),
	})
}

// stepOptions are options for activities that heartbeat every
// activities.HeartbeatEvery and may take up to startToClose: retried with
// backoff, five times at most, except for the error types named.
func stepOptions(ctx workflow.Context, startToClose time.Duration, nonRetryable ...string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: startToClose,
		HeartbeatTimeout:    5 * activities.HeartbeatEvery,
		RetryPolicy:         stepRetry(nonRetryable...),
	})
}

// stepRetry is how node steps are retried: with backoff, five times at
// most, except for the error types named.
func stepRetry(nonRetryable ...string) *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval:        time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        15 * time.Second,
		MaximumAttempts:        5,
		NonRetryableErrorTypes: nonRetryable,
	}
}
