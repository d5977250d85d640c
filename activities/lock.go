package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/temporal"
)

// ErrClusterLocked: another operator's workflow holds the cluster lock in
// the store (etcd).
const ErrClusterLocked = "ClusterLocked"

// LockTTL is how long a cluster lock outlives its last keep-alive: a
// crashed worker's lock is free again after it, unless another worker
// keeps it first.
const LockTTL = 15 * time.Second

// AcquireClusterLock takes the store's cluster lock for holder when the
// store can hold one (etcd); otherwise it returns lease 0 and the Temporal
// workflow ID stays the only lock.
func (a *Activities) AcquireClusterLock(ctx context.Context, ref deploy.ConfigRef, holder string) (int64, error) {
	l, err := a.locker(ctx, ref)
	if err != nil || l == nil {
		return 0, err
	}
	lease, err := l.Acquire(ctx, holder, LockTTL)
	if errors.Is(err, backends.ErrLocked) {
		return 0, temporal.NewNonRetryableApplicationError(err.Error(), ErrClusterLocked, nil)
	}
	if err != nil {
		return 0, fmt.Errorf("cluster lock: %w", err)
	}
	return lease, nil
}

// KeepClusterLock keeps the lock's lease alive, heartbeating, until the
// workflow cancels it. If the worker dies, Temporal runs it again
// elsewhere (after the heartbeat timeout, shorter than LockTTL) on the
// same lease.
func (a *Activities) KeepClusterLock(ctx context.Context, ref deploy.ConfigRef, lease int64) error {
	l, err := a.locker(ctx, ref)
	if err != nil || l == nil || lease == 0 {
		return err
	}
	return heartbeating(ctx, "holding the cluster lock", func(ctx context.Context) error {
		return l.Keep(ctx, lease)
	})
}

// ReleaseClusterLock frees the lock (idempotent).
func (a *Activities) ReleaseClusterLock(ctx context.Context, ref deploy.ConfigRef, lease int64) error {
	l, err := a.locker(ctx, ref)
	if err != nil || l == nil || lease == 0 {
		return err
	}
	return l.Release(ctx, lease)
}

// locker is the cluster lock of the Store ref names, or nil when that
// store cannot hold one.
func (a *Activities) locker(ctx context.Context, ref deploy.ConfigRef) (backends.Locker, error) {
	_, b, err := a.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	l, _ := b.Store.(backends.Locker)
	return l, nil
}
