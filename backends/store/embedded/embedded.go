package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/statedir"
	bolt "go.etcd.io/bbolt"
)

var (
	bucket   = []byte("dflow")
	stateKey = []byte("state")
)

// LockTimeout bounds how long an operation waits for another process that
// has the file open.
const LockTimeout = 10 * time.Second

// Store is a Store on a bbolt file.
type Store struct{ path string }

var _ backends.Store = (*Store)(nil)

// Open returns the store at path, creating the file when missing. The file
// is its owner's only (0600): a store an older dflow made 0644 is tightened.
func Open(path string) (*Store, error) {
	s := &Store{path: path}
	if err := statedir.Tighten(path); err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	if st, err := os.Stat(path); err == nil && st.Size() > 0 {
		// It exists and was initialized (bbolt writes its first pages at
		// once, under the write lock, which Load's shared lock waits for):
		// check it under a shared lock rather than the write lock (every
		// activity opens the store; many run at once). An empty file may be
		// another process's, being initialized: take the write path.
		if _, err := s.Load(context.Background()); err != nil {
			return nil, err
		}
		return s, nil
	}
	if err := s.update(func(*deploy.State) (bool, error) { return false, nil }); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) db(readOnly bool) (*bolt.DB, error) {
	db, err := bolt.Open(s.path, statedir.FileMode, &bolt.Options{Timeout: LockTimeout, ReadOnly: readOnly})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("store %s is locked by another process (waited %s)", s.path, LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: open: %w", s.path, err)
	}
	return db, nil
}

func decode(b []byte, st *deploy.State) error {
	if b == nil {
		return nil
	}
	return json.Unmarshal(b, st)
}

// Load implements backends.Store.
func (s *Store) Load(ctx context.Context) (deploy.State, error) {
	var st deploy.State
	db, err := s.db(true)
	if err != nil {
		return st, err
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		return decode(b.Get(stateKey), &st)
	})
	if err != nil {
		return deploy.State{}, fmt.Errorf("store %s: load: %w", s.path, err)
	}
	return st, nil
}

// update runs f on the stored state in one write transaction; when f says
// so, the state is written back with the revision incremented.
func (s *Store) update(f func(*deploy.State) (bool, error)) error {
	db, err := s.db(false)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return fmt.Errorf("store %s: %w", s.path, err)
		}
		var st deploy.State
		if err := decode(b.Get(stateKey), &st); err != nil {
			return fmt.Errorf("store %s: decode state: %w", s.path, err)
		}
		write, err := f(&st)
		if err != nil || !write {
			return err
		}
		st.Revision++
		sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].Index < st.Nodes[j].Index })
		raw, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("store %s: encode state: %w", s.path, err)
		}
		return b.Put(stateKey, raw)
	})
}

// Save implements backends.Store.
func (s *Store) Save(ctx context.Context, next deploy.State) error {
	return s.update(func(cur *deploy.State) (bool, error) {
		if cur.Revision != next.Revision {
			return false, fmt.Errorf("store %s: save at revision %d, stored %d: %w", s.path, next.Revision, cur.Revision, backends.ErrConflict)
		}
		next.Nodes = append([]deploy.Node(nil), next.Nodes...)
		*cur = next
		return true, nil
	})
}

// Add implements backends.Store.
func (s *Store) Add(ctx context.Context, n deploy.Node) (int, error) {
	index := n.Index
	err := s.update(func(st *deploy.State) (bool, error) {
		i, changed, takenBy := st.AddNode(n)
		index = i
		if takenBy != "" {
			return false, fmt.Errorf("store %s: add node %d (%s): holds %s: %w", s.path, i, n.ID, takenBy, backends.ErrIndexTaken)
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
	return s.update(func(st *deploy.State) (bool, error) {
		changed, takenBy := st.RemoveNode(index, n.ID)
		if takenBy != "" {
			return false, fmt.Errorf("store %s: remove node %d (%s): holds %s: %w", s.path, index, n.ID, takenBy, backends.ErrIndexTaken)
		}
		return changed, nil
	})
}

// Close implements backends.Store; the file is not held open between
// operations, so there is nothing to release.
func (s *Store) Close() error { return nil }
