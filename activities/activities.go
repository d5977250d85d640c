package activities

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/crypto/ssh"
)

// Backends are the backends one configuration names, ready to use.
type Backends struct {
	VM      backends.VMBackend
	Store   backends.Store
	Reader  backends.PackageReader
	Builder backends.Builder
	// Container makes what nodes run a release from, and starts and stops
	// its versions on the nodes (StartOnNode, StopOnNode need it).
	Container backends.ContainerBackend
	// Artifacts is the control plane's artifact store (.dflow/artifacts):
	// every built bundle, by digest; copies to nodes come from here.
	Artifacts *artifact.Store
	// Keys is the authorized_keys content installed on new nodes.
	Keys string
	// Signer signs requests to node agents.
	Signer ssh.Signer
}

// Close releases what the backends hold.
func (b *Backends) Close() error {
	if b.Store != nil {
		return b.Store.Close()
	}
	return nil
}

// Opener builds the backends cfg names (worker/ has the table of names).
type Opener func(ctx context.Context, cfg deploy.Config) (*Backends, error)

// StoreOpener opens the Store cfg names, alone.
type StoreOpener func(ctx context.Context, cfg deploy.Config) (backends.Store, error)

// Activities are the activities the workflows call. Every method takes a
// deploy.ConfigRef, not a configuration: the configuration revision is read
// from the Store it names (app.env's values never travel in workflow
// payloads), and the backends it names are built once per revision and kept.
type Activities struct {
	Open Opener
	// OpenStore opens the Store a ConfigRef names; nil: Open's Store.
	OpenStore StoreOpener

	mu    sync.Mutex
	built map[deploy.ConfigRef]*built
	tick  int64
}

// built is one configuration revision and its backends.
type built struct {
	cfg  deploy.Config
	b    *Backends
	used int64
}

// maxBuilt bounds the revisions whose backends are kept; the least recently
// used go first (closed a minute later: an activity may still use them).
const maxBuilt = 16

// ErrBadInput marks errors that retrying cannot fix.
const ErrBadInput = "BadInput"

// resolve returns the configuration ref names (app.env included) and its
// backends, built on first use.
func (a *Activities) resolve(ctx context.Context, ref deploy.ConfigRef) (deploy.Config, *Backends, error) {
	if ref.Revision <= 0 {
		return deploy.Config{}, nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("cluster %s: the request names no configuration revision (made by an older dflow?): run the command again", ref.Name), ErrBadInput, nil)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tick++
	if x, ok := a.built[ref]; ok {
		x.used = a.tick
		return x.cfg, x.b, nil
	}
	cfg, err := a.loadConfig(ctx, ref)
	if err != nil {
		return deploy.Config{}, nil, err
	}
	b, err := a.Open(ctx, cfg)
	if err != nil {
		return deploy.Config{}, nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrBadInput, nil)
	}
	if a.built == nil {
		a.built = map[deploy.ConfigRef]*built{}
	}
	if len(a.built) >= maxBuilt {
		var oldest deploy.ConfigRef
		var at int64 = -1
		for r, x := range a.built {
			if at < 0 || x.used < at {
				oldest, at = r, x.used
			}
		}
		old := a.built[oldest].b
		delete(a.built, oldest)
		time.AfterFunc(time.Minute, func() { _ = old.Close() })
	}
	a.built[ref] = &built{cfg: cfg, b: b, used: a.tick}
	return cfg, b, nil
}

// loadConfig reads revision ref.Revision from the Store ref names.
func (a *Activities) loadConfig(ctx context.Context, ref deploy.ConfigRef) (deploy.Config, error) {
	sc := ref.StoreConfig()
	var st backends.Store
	if a.OpenStore != nil {
		var err error
		if st, err = a.OpenStore(ctx, sc); err != nil {
			return deploy.Config{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("open the store of cluster %s: %v", ref.Name, err), ErrBadInput, nil)
		}
	} else {
		b, err := a.Open(ctx, sc)
		if err != nil {
			return deploy.Config{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("open the store of cluster %s: %v", ref.Name, err), ErrBadInput, nil)
		}
		st = b.Store
	}
	defer st.Close()
	s, err := st.Load(ctx)
	if err != nil {
		return deploy.Config{}, fmt.Errorf("load configuration revision %d of cluster %s: %w", ref.Revision, ref.Name, err)
	}
	cfg, err := s.Config(ref.Revision)
	if err != nil {
		return deploy.Config{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("cluster %s: %v", ref.Name, err), ErrBadInput, nil)
	}
	return cfg, nil
}

// HeartbeatEvery is how often a running activity tells Temporal it is alive;
// workflows set a heartbeat timeout a few times longer, so a dead worker is
// noticed in seconds however long a backend call takes.
const HeartbeatEvery = time.Second

// heartbeating runs f, heartbeating while it runs, and returns its error.
func heartbeating(ctx context.Context, what string, f func(context.Context) error) error {
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	tick := time.NewTicker(HeartbeatEvery)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			activity.RecordHeartbeat(ctx, what)
		}
	}
}

// Inventory is what the store records and what really runs.
type Inventory struct {
	State deploy.State  `json:"state"`
	Live  []deploy.Node `json:"live"`
}

// Inventory loads the store's state and lists the live nodes.
func (a *Activities) Inventory(ctx context.Context, ref deploy.ConfigRef) (Inventory, error) {
	_, b, err := a.resolve(ctx, ref)
	if err != nil {
		return Inventory{}, err
	}
	return ReadInventory(ctx, b)
}

// ReadInventory loads b's store's state and lists b's live nodes (the
// Inventory activity; the CLI's read-only commands).
func ReadInventory(ctx context.Context, b *Backends) (Inventory, error) {
	st, err := b.Store.Load(ctx)
	if err != nil {
		return Inventory{}, fmt.Errorf("inventory: %w", err)
	}
	// The configuration revisions hold app.env's values: they stay in the
	// Store, out of the workflow's history.
	st.Configs = nil
	live, err := b.VM.List(ctx)
	if err != nil {
		return Inventory{}, fmt.Errorf("inventory: %w", err)
	}
	return Inventory{State: st, Live: live}, nil
}

// SetCount records the desired number of nodes, and removes what is left
// of nodes from index count up that the store does not record (SweepRemains):
// half-made nodes that no List reports, so that no plan sees them, are
// gone after `set N` (after `set 0`, nothing dflow made is left).
func (a *Activities) SetCount(ctx context.Context, ref deploy.ConfigRef, count int) error {
	_, b, err := a.resolve(ctx, ref)
	if err != nil {
		return err
	}
	if err := update(ctx, b.Store, func(s *deploy.State) { s.Count = count }); err != nil {
		return err
	}
	return heartbeating(ctx, "removing half-made nodes", func(ctx context.Context) error {
		_, err := SweepRemains(ctx, b, count)
		return err
	})
}

// SweepRemains destroys what b's VM backend holds of nodes at indices from
// `from` up that b's store does not record: what a create cut short by a
// crash left (a failed create removes what it made itself), or a dead node
// the store forgot. List reports only running nodes, so no plan sees these;
// a backend that cannot tell its remains (not a backends.RemainsLister)
// sweeps nothing. It returns the indices it destroyed.
func SweepRemains(ctx context.Context, b *Backends, from int) ([]int, error) {
	rl, ok := b.VM.(backends.RemainsLister)
	if !ok {
		return nil, nil
	}
	held, err := rl.Remains(ctx)
	if err != nil {
		return nil, fmt.Errorf("remove half-made nodes: %w", err)
	}
	st, err := b.Store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("remove half-made nodes: %w", err)
	}
	var swept []int
	for _, i := range held {
		if _, recorded := st.Node(i); i < from || recorded {
			continue
		}
		if err := b.VM.Destroy(ctx, deploy.Node{Index: i}); err != nil {
			return swept, fmt.Errorf("remove what is left of node %d (not recorded, from a create cut short): %w", i, err)
		}
		swept = append(swept, i)
	}
	return swept, nil
}

// update applies f to the stored state and saves it (backends.Update:
// compare-and-swap, f applied again after a conflict).
func update(ctx context.Context, s backends.Store, f func(*deploy.State)) error {
	if err := backends.Update(ctx, s, func(st *deploy.State) bool { f(st); return true }); err != nil {
		return fmt.Errorf("update state: %w", err)
	}
	return nil
}

// CreateNode makes the node at index (idempotent: an existing live node is
// kept) and records it in the store, replacing a stale record of an older
// incarnation at the same index.
func (a *Activities) CreateNode(ctx context.Context, ref deploy.ConfigRef, index int) (deploy.Node, error) {
	cfg, b, err := a.resolve(ctx, ref)
	if err != nil {
		return deploy.Node{}, err
	}
	var n deploy.Node
	err = heartbeating(ctx, "creating node", func(ctx context.Context) (err error) {
		n, err = b.VM.Create(ctx, deploy.NodeSpec{Index: index, Image: cfg.Image, Keys: b.Keys})
		return err
	})
	if err != nil {
		return deploy.Node{}, err
	}
	if _, err := b.Store.Add(ctx, n); errors.Is(err, backends.ErrIndexTaken) {
		if err := b.Store.Remove(ctx, index, deploy.Node{}); err != nil {
			return deploy.Node{}, fmt.Errorf("create node %d: forget the old incarnation: %w", index, err)
		}
		_, err = b.Store.Add(ctx, n)
		if err != nil {
			return deploy.Node{}, fmt.Errorf("create node %d: record it: %w", index, err)
		}
	} else if err != nil {
		return deploy.Node{}, fmt.Errorf("create node %d: record it: %w", index, err)
	}
	return n, nil
}

// DestroyNode destroys n and forgets it in the store (idempotent).
func (a *Activities) DestroyNode(ctx context.Context, ref deploy.ConfigRef, n deploy.Node) error {
	_, b, err := a.resolve(ctx, ref)
	if err != nil {
		return err
	}
	if err := heartbeating(ctx, "destroying node", func(ctx context.Context) error { return b.VM.Destroy(ctx, n) }); err != nil {
		return err
	}
	if err := b.Store.Remove(ctx, n.Index, n); err != nil && !errors.Is(err, backends.ErrIndexTaken) {
		return fmt.Errorf("destroy node %d: forget it: %w", n.Index, err)
	}
	return nil
}
