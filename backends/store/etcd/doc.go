// Package etcd is the Store that keeps the cluster state in etcd, so that
// several operators and workers share one cluster's state. It is selected by
// backends.store (or --store) "etcd://HOST:PORT[,HOST:PORT...]"; ParseURL
// reads that strictly.
//
// Keys are per cluster, under /dflow/<cluster name>/:
//
//	/dflow/<cluster>/state         the JSON of deploy.State (as the embedded store writes it)
//	/dflow/<cluster>/lock/<lease>  the cluster lock's holders and waiters (see Store.Lock)
//
// Revisions: deploy.State.Revision is the etcd version of the state key, the
// number of times it has been written (0 when it never was; the JSON's own
// revision field is written to match). Save is one etcd transaction that
// puts the new state only if the key's version still equals the revision
// the state was loaded at, so a stale Save is ErrConflict and changes
// nothing, and a successful one increments the revision. Add and Remove
// load, change and save, retrying with a small random backoff on conflict;
// an Add that changes nothing does not write.
//
// Connecting never hangs: New checks within DialTimeout (5 s) that etcd
// answers and otherwise fails with an error naming the endpoints; every
// request is bounded by OpTimeout (10 s) unless its context ends sooner.
//
// Store.Lock is the cluster lock as an etcd lease (concurrency.Session and
// Mutex, TryLock semantics): a second holder is refused at once with a
// *LockedError naming the first, and a holder that crashes loses the lock
// when its lease expires, within the lease's TTL.
//
// Tested against etcd 3.4.23 (Debian's etcd-server) with
// go.etcd.io/etcd/client/v3 v3.5.33.
package etcd
