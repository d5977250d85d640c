package etcd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/distributive-flow/dflow/backends"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// ErrLocked is what Lock's error wraps when another holder has the lock.
var ErrLocked = backends.ErrLocked

// LockedError is Lock's error when another holder has the cluster lock.
type LockedError struct {
	Cluster string
	Holder  string // the holder string the other Lock call gave ("" if unknown)
	Lease   int64  // the holder's etcd lease ID
}

func (e *LockedError) Error() string {
	holder := e.Holder
	if holder == "" {
		holder = "an unnamed holder"
	} else {
		holder = fmt.Sprintf("%q", holder)
	}
	return fmt.Sprintf("cluster %s is locked by %s (etcd lease %x)", e.Cluster, holder, e.Lease)
}

// Unwrap makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Unwrap() error { return ErrLocked }

// LockKey is the key prefix of a cluster's lock: /dflow/<cluster>/lock.
func LockKey(cluster string) string { return Prefix(cluster) + "lock" }

// Lock takes the cluster's lock for holder (a free-form name that a refused
// Lock reports: "deploy by alice@laptop, workflow deploy/foo") or fails at
// once: it does not wait. If another holder has the lock, the error is a
// *LockedError (errors.Is(err, ErrLocked)) naming it.
//
// The lock lives as long as an etcd lease of ttl (rounded up to whole
// seconds; etcd raises a TTL below its minimum, about 2 s with default
// settings) that this process keeps alive in the background. If the process
// dies or loses etcd for longer than ttl, the lease expires and the lock is
// free again: a crashed holder never blocks the cluster for longer than ttl.
// The flip side: a holder cut off from etcd for longer than ttl has lost the
// lock without knowing it until it calls unlock.
//
// unlock releases the lock and revokes the lease; calling it again is a
// no-op. Closing the Store also ends the lease (it then expires after ttl).
//
// Implementation: a concurrency.Session on a lease of ttl and a
// concurrency.Mutex at LockKey(cluster) with TryLock. The waiter key is
// written, with the holder string as its value, before TryLock, so whoever
// sees the lock held can read who holds it.
func (s *Store) Lock(ctx context.Context, holder string, ttl time.Duration) (unlock func() error, err error) {
	unlock, _, err = s.lock(ctx, holder, ttl, true)
	return unlock, err
}

// lock takes the lock on a new lease; with keep, a session keeps the lease
// alive in this process until unlock; without, the lease is left to the
// caller (Keep) and unlock is nil.
func (s *Store) lock(ctx context.Context, holder string, ttl time.Duration, keep bool) (unlock func() error, leaseID int64, err error) {
	fail := func(what string, err error) (func() error, int64, error) {
		return nil, 0, fmt.Errorf("etcd store %s at %s: lock: %s: %w", s.cluster, s.where(), what, err)
	}
	secs := int64(math.Ceil(ttl.Seconds()))
	if secs < 1 {
		secs = 1
	}
	octx, cancel := s.op(ctx)
	defer cancel()
	lease, err := s.client.Grant(octx, secs)
	if err != nil {
		return fail("grant lease", err)
	}
	revoke := func() {
		rctx, cancel := context.WithTimeout(context.Background(), s.opTimeout)
		defer cancel()
		_, _ = s.client.Revoke(rctx, lease.ID)
	}
	// The session keeps the lease alive after this call returns, so it is
	// not bound to ctx.
	session, err := concurrency.NewSession(s.client, concurrency.WithLease(lease.ID))
	if err != nil {
		revoke()
		return fail("keep lease alive", err)
	}
	pfx := LockKey(s.cluster)
	mutex := concurrency.NewMutex(session, pfx)
	myKey := fmt.Sprintf("%s/%x", pfx, lease.ID)
	if _, err := s.client.Put(octx, myKey, holder, clientv3.WithLease(lease.ID)); err != nil {
		_ = session.Close()
		return fail("write holder", err)
	}
	if err := mutex.TryLock(octx); err != nil {
		_ = session.Close() // revokes the lease, which deletes myKey
		if !errors.Is(err, concurrency.ErrLocked) {
			return fail("try lock", err)
		}
		le := &LockedError{Cluster: s.cluster}
		resp, gerr := s.client.Get(octx, pfx+"/", clientv3.WithFirstCreate()...)
		if gerr == nil && len(resp.Kvs) > 0 {
			le.Holder = string(resp.Kvs[0].Value)
			le.Lease = resp.Kvs[0].Lease
		}
		return nil, 0, le
	}
	if !keep {
		session.Orphan() // stop keeping the lease alive; it stays, held
		return nil, int64(lease.ID), nil
	}
	var once sync.Once
	var uerr error
	return func() error {
		once.Do(func() {
			uctx, cancel := context.WithTimeout(context.Background(), s.opTimeout)
			defer cancel()
			if err := mutex.Unlock(uctx); err != nil {
				uerr = fmt.Errorf("etcd store %s at %s: unlock: %w", s.cluster, s.where(), err)
			}
			if err := session.Close(); err != nil && uerr == nil {
				uerr = fmt.Errorf("etcd store %s at %s: unlock: revoke lease: %w", s.cluster, s.where(), err)
			}
		})
		return uerr
	}, int64(lease.ID), nil
}

// Acquire takes the cluster lock for holder, like Lock, but leaves keeping
// it to the caller: it returns the lease the lock lives on, which expires
// ttl after the last keep-alive. Keep keeps it alive (from any process:
// a workflow's lock outlives the worker that took it) and Release ends it.
func (s *Store) Acquire(ctx context.Context, holder string, ttl time.Duration) (int64, error) {
	unlock, lease, err := s.lock(ctx, holder, ttl, false)
	_ = unlock
	return lease, err
}

// Keep keeps lease alive until ctx ends (then it returns nil). It returns
// an error when the lease is gone: expired or revoked, so the lock is lost.
func (s *Store) Keep(ctx context.Context, lease int64) error {
	ch, err := s.client.KeepAlive(ctx, clientv3.LeaseID(lease))
	if err != nil {
		return fmt.Errorf("etcd store %s at %s: keep lock lease %x: %w", s.cluster, s.where(), lease, err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-ch:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("etcd store %s at %s: the lock's lease %x is gone: the lock is lost", s.cluster, s.where(), lease)
			}
		}
	}
}

// Release frees the lock held on lease (revokes it). A lease that is gone
// already is no error.
func (s *Store) Release(ctx context.Context, lease int64) error {
	octx, cancel := s.op(ctx)
	defer cancel()
	_, err := s.client.Revoke(octx, clientv3.LeaseID(lease))
	if err != nil && !strings.Contains(err.Error(), "requested lease not found") {
		return fmt.Errorf("etcd store %s at %s: release lock lease %x: %w", s.cluster, s.where(), lease, err)
	}
	return nil
}
