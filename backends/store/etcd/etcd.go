package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Name selects this store in dflow.yaml (backends.store: etcd://...).
const Name = "etcd"

// Defaults for Options.
const (
	DefaultDialTimeout = 5 * time.Second
	DefaultOpTimeout   = 10 * time.Second
)

// Options configure a Store.
type Options struct {
	// Endpoints are the etcd members, "HOST:PORT" each (see ParseURL).
	Endpoints []string
	// Cluster is the dflow cluster's name: its keys live under
	// /dflow/<Cluster>/.
	Cluster string
	// DialTimeout bounds connecting: an etcd that does not answer within
	// it makes Open fail (default DefaultDialTimeout).
	DialTimeout time.Duration
	// OpTimeout bounds each request whose context has no earlier deadline
	// (default DefaultOpTimeout).
	OpTimeout time.Duration
}

// Store is a backends.Store on etcd. It is safe for concurrent use, and any
// number of Stores (in any number of processes) may share one cluster's
// keys.
type Store struct {
	client    *clientv3.Client
	endpoints []string
	cluster   string
	key       string // /dflow/<cluster>/state
	opTimeout time.Duration

	closeOnce sync.Once
	closeErr  error
}

var (
	_ backends.Store  = (*Store)(nil)
	_ backends.Locker = (*Store)(nil)
)

// Open connects to the etcd members the URL names (see ParseURL) and returns
// the store of the cluster named cluster.
func Open(ctx context.Context, url, cluster string) (*Store, error) {
	eps, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	return New(ctx, Options{Endpoints: eps, Cluster: cluster})
}

// New connects to o.Endpoints and checks, within o.DialTimeout, that etcd
// answers: an unreachable etcd is an error naming the endpoints, never a
// hang.
func New(ctx context.Context, o Options) (*Store, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("etcd store: no endpoints given")
	}
	if o.Cluster == "" || strings.ContainsAny(o.Cluster, "/\x00") {
		return nil, fmt.Errorf("etcd store: cluster name %q: want a non-empty name without '/'", o.Cluster)
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = DefaultOpTimeout
	}
	urls := make([]string, len(o.Endpoints))
	for i, ep := range o.Endpoints {
		urls[i] = "http://" + ep
	}
	s := &Store{
		endpoints: append([]string(nil), o.Endpoints...),
		cluster:   o.Cluster,
		key:       Prefix(o.Cluster) + "state",
		opTimeout: o.OpTimeout,
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:            urls,
		DialTimeout:          o.DialTimeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		Logger:               zap.NewNop(),
		Context:              context.Background(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd store at %s: connect: %w", s.where(), err)
	}
	s.client = client
	pctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	defer cancel()
	// The client's requests wait for a connection rather than fail fast, so
	// a refused connection would only show as a timeout: dial each endpoint
	// alongside, to say why etcd does not answer.
	diag := make(chan string, 1)
	go func() { diag <- dialEach(pctx, o.Endpoints) }()
	if _, err := client.Get(pctx, s.key, clientv3.WithCountOnly()); err != nil {
		_ = client.Close()
		if pctx.Err() != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("etcd store: no answer from etcd at %s within %s (is it running and reachable?%s): %w", s.where(), o.DialTimeout, <-diag, err)
		}
		return nil, fmt.Errorf("etcd store at %s: %w", s.where(), err)
	}
	return s, nil
}

// dialEach connects to each endpoint over TCP and returns, for the ones that
// fail, " HOST:PORT: reason" each, separated by ';'.
func dialEach(ctx context.Context, endpoints []string) string {
	reasons := make([]string, len(endpoints))
	failed := func(i int, err error) { reasons[i] = fmt.Sprintf("%s: %v", endpoints[i], err) }
	var wg sync.WaitGroup
	for i, ep := range endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", ep)
			if err != nil {
				var op *net.OpError
				if errors.As(err, &op) && op.Err != nil {
					err = op.Err
				}
				failed(i, err)
				return
			}
			c.Close()
		}()
	}
	wg.Wait()
	var out []string
	for _, r := range reasons {
		if r != "" {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return " " + strings.Join(out, "; ")
}

// Prefix is the key prefix of a cluster's keys: /dflow/<cluster>/.
func Prefix(cluster string) string { return "/dflow/" + cluster + "/" }

// Key is the key the cluster state is kept at: /dflow/<cluster>/state.
func (s *Store) Key() string { return s.key }

func (s *Store) where() string { return strings.Join(s.endpoints, ",") }

// op returns ctx bounded by the store's OpTimeout.
func (s *Store) op(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= s.opTimeout {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.opTimeout)
}

// fail wraps err with what was done and where; a timed-out request says so.
func (s *Store) fail(what string, ctx, opCtx context.Context, err error) error {
	if opCtx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		return fmt.Errorf("etcd store %s at %s: %s: no answer within %s: %w", s.cluster, s.where(), what, s.opTimeout, err)
	}
	return fmt.Errorf("etcd store %s at %s: %s: %w", s.cluster, s.where(), what, err)
}

// Load implements backends.Store. The revision is the state key's etcd
// version: the number of times it has been written (0 when it never was).
func (s *Store) Load(ctx context.Context) (deploy.State, error) {
	octx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.client.Get(octx, s.key)
	if err != nil {
		return deploy.State{}, s.fail("load", ctx, octx, err)
	}
	if len(resp.Kvs) == 0 {
		return deploy.State{}, nil
	}
	kv := resp.Kvs[0]
	var st deploy.State
	if err := json.Unmarshal(kv.Value, &st); err != nil {
		return deploy.State{}, fmt.Errorf("etcd store %s at %s: load: decode %s: %w", s.cluster, s.where(), s.key, err)
	}
	st.Revision = kv.Version
	return st, nil
}

// Save implements backends.Store: one etcd transaction that writes the
// state only if the key's version still equals next.Revision.
func (s *Store) Save(ctx context.Context, next deploy.State) error {
	next.Nodes = append([]deploy.Node(nil), next.Nodes...)
	sort.SliceStable(next.Nodes, func(i, j int) bool { return next.Nodes[i].Index < next.Nodes[j].Index })
	stored := next
	stored.Revision = next.Revision + 1 // the key's version after this write
	raw, err := json.Marshal(stored)
	if err != nil {
		return fmt.Errorf("etcd store %s: save: encode state: %w", s.cluster, err)
	}
	octx, cancel := s.op(ctx)
	defer cancel()
	resp, err := s.client.Txn(octx).
		If(clientv3.Compare(clientv3.Version(s.key), "=", next.Revision)).
		Then(clientv3.OpPut(s.key, string(raw))).
		Else(clientv3.OpGet(s.key, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return s.fail("save", ctx, octx, err)
	}
	if !resp.Succeeded {
		var cur int64
		if r := resp.Responses[0].GetResponseRange(); r != nil && len(r.Kvs) > 0 {
			cur = r.Kvs[0].Version
		}
		return fmt.Errorf("etcd store %s: save at revision %d, stored %d: %w", s.cluster, next.Revision, cur, backends.ErrConflict)
	}
	return nil
}

// update applies f to the stored state and saves it when f says so,
// loading again and retrying when another writer saved in between.
func (s *Store) update(ctx context.Context, f func(*deploy.State) (bool, error)) error {
	for attempt := 0; ; attempt++ {
		st, err := s.Load(ctx)
		if err != nil {
			return err
		}
		write, err := f(&st)
		if err != nil || !write {
			return err
		}
		err = s.Save(ctx, st)
		if !errors.Is(err, backends.ErrConflict) {
			return err
		}
		// Contended: back off a little, randomly, so writers spread out.
		wait := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 6)))
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd store %s: %w (after %d conflicts)", s.cluster, ctx.Err(), attempt+1)
		case <-time.After(wait):
		}
	}
}

// Add implements backends.Store.
func (s *Store) Add(ctx context.Context, n deploy.Node) (int, error) {
	index := n.Index
	err := s.update(ctx, func(st *deploy.State) (bool, error) {
		i, changed, takenBy := st.AddNode(n)
		index = i
		if takenBy != "" {
			return false, fmt.Errorf("etcd store %s: add node %d (%s): holds %s: %w", s.cluster, i, n.ID, takenBy, backends.ErrIndexTaken)
		}
		return changed, nil
	})
	if err != nil {
		return 0, err
	}
	return index, nil
}

// Remove implements backends.Store.
func (s *Store) Remove(ctx context.Context, index int, n deploy.Node) error {
	return s.update(ctx, func(st *deploy.State) (bool, error) {
		changed, takenBy := st.RemoveNode(index, n.ID)
		if takenBy != "" {
			return false, fmt.Errorf("etcd store %s: remove node %d (%s): holds %s: %w", s.cluster, index, n.ID, takenBy, backends.ErrIndexTaken)
		}
		return changed, nil
	})
}

// Close implements backends.Store: it closes the etcd client. Locks taken
// with Lock and not yet unlocked are released with it (their leases are
// no longer kept alive and expire). Closing twice is not an error.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if err := s.client.Close(); err != nil && !errors.Is(err, context.Canceled) {
			s.closeErr = fmt.Errorf("etcd store %s: close: %w", s.cluster, err)
		}
	})
	return s.closeErr
}
