package testsuite

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
)

// FakeVM is an in-memory VMBackend that records what it was asked to do.
// Kill makes a node "die" (it stays in the fake's memory but List omits it).
type FakeVM struct {
	mu      sync.Mutex
	nodes   map[int]deploy.Node
	dead    map[int]bool
	gen     int
	Created []int // indices Create made anew or brought back, in order
	Killed  []int // indices Destroy removed, in order
}

var (
	_ backends.VMBackend     = (*FakeVM)(nil)
	_ backends.RemainsLister = (*FakeVM)(nil)
)

// NewFakeVM returns an empty fake.
func NewFakeVM() *FakeVM {
	return &FakeVM{nodes: map[int]deploy.Node{}, dead: map[int]bool{}}
}

// Create implements backends.VMBackend. Keys that are given but hold no
// key (comments only) fail as a real node's agent does, and leave nothing;
// empty Keys are taken (workflow tests give none). A dead node of another
// image is made anew.
func (f *FakeVM) Create(ctx context.Context, s deploy.NodeSpec) (deploy.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.Keys != "" && !holdsKey(s.Keys) {
		return deploy.Node{}, fmt.Errorf("create node %d: the agent's authorized_keys holds no keys", s.Index)
	}
	if n, ok := f.nodes[s.Index]; ok && f.dead[s.Index] && n.Image != s.Image {
		delete(f.nodes, s.Index)
		delete(f.dead, s.Index)
	}
	if n, ok := f.nodes[s.Index]; ok {
		if f.dead[s.Index] {
			delete(f.dead, s.Index)
			f.Created = append(f.Created, s.Index)
		}
		return n, nil
	}
	f.gen++
	n := deploy.Node{
		Index:     s.Index,
		ID:        fmt.Sprintf("fake-%d-%d", s.Index, f.gen),
		Address:   fmt.Sprintf("10.99.0.%d", s.Index+2),
		AgentURL:  fmt.Sprintf("http://10.99.0.%d:7077", s.Index+2),
		Backend:   "fake",
		Image:     s.Image,
		CreatedAt: time.Date(2026, 1, 1, 0, 0, f.gen, 0, time.UTC),
	}
	f.nodes[s.Index] = n
	f.Created = append(f.Created, s.Index)
	return n, nil
}

// Destroy implements backends.VMBackend.
func (f *FakeVM) Destroy(ctx context.Context, n deploy.Node) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur, ok := f.nodes[n.Index]
	if !ok || (n.ID != "" && cur.ID != n.ID) {
		return nil
	}
	delete(f.nodes, n.Index)
	delete(f.dead, n.Index)
	f.Killed = append(f.Killed, n.Index)
	return nil
}

// List implements backends.VMBackend.
func (f *FakeVM) List(ctx context.Context) ([]deploy.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []deploy.Node
	for i, n := range f.nodes {
		if !f.dead[i] {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Index < out[b].Index })
	return out, nil
}

// Remains implements backends.RemainsLister: the indices of the nodes the
// fake holds, dead ones too.
func (f *FakeVM) Remains(ctx context.Context) ([]int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []int{}
	for i := range f.nodes {
		out = append(out, i)
	}
	sort.Ints(out)
	return out, nil
}

func holdsKey(keys string) bool {
	for _, line := range strings.Split(keys, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return true
		}
	}
	return false
}

// Kill makes the node at index die without telling anyone.
func (f *FakeVM) Kill(index int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dead[index] = true
}

// Plant puts a node the store does not know about (an orphan).
func (f *FakeVM) Plant(n deploy.Node) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes[n.Index] = n
}

// MemStore is an in-memory Store with the same compare-and-swap contract as
// the real ones; it passes StoreSuite.
type MemStore struct {
	mu *sync.Mutex
	st *deploy.State
}

var _ backends.Store = MemStore{}

// NewMemStore returns an empty store.
func NewMemStore() MemStore { return MemStore{mu: &sync.Mutex{}, st: &deploy.State{}} }

// Load implements backends.Store.
func (m MemStore) Load(ctx context.Context) (deploy.State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return clone(*m.st), nil
}

// Save implements backends.Store.
func (m MemStore) Save(ctx context.Context, s deploy.State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.Revision != m.st.Revision {
		return backends.ErrConflict
	}
	s = clone(s)
	s.Revision++
	sortNodes(s.Nodes)
	*m.st = s
	return nil
}

// Add implements backends.Store.
func (m MemStore) Add(ctx context.Context, n deploy.Node) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	index, changed, takenBy := m.st.AddNode(n)
	if takenBy != "" {
		return 0, backends.ErrIndexTaken
	}
	if changed {
		sortNodes(m.st.Nodes)
		m.st.Revision++
	}
	return index, nil
}

// Remove implements backends.Store.
func (m MemStore) Remove(ctx context.Context, index int, n deploy.Node) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	changed, takenBy := m.st.RemoveNode(index, n.ID)
	if takenBy != "" {
		return backends.ErrIndexTaken
	}
	if changed {
		m.st.Revision++
	}
	return nil
}

// Close implements backends.Store.
func (m MemStore) Close() error { return nil }

func clone(s deploy.State) deploy.State {
	s.Nodes = append([]deploy.Node(nil), s.Nodes...)
	s.Releases = append([]deploy.Release(nil), s.Releases...)
	s.Builds = append([]deploy.Target(nil), s.Builds...)
	s.Health = append([]deploy.Verdict(nil), s.Health...)
	return s
}

func sortNodes(ns []deploy.Node) {
	sort.Slice(ns, func(a, b int) bool { return ns[a].Index < ns[b].Index })
}
