package deploy

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// AutoIndex asks Store.Add to choose the lowest free node index.
const AutoIndex = -1

// Node is one machine, container, VM or local sandbox that runs a dflow agent.
// Index is small, stable and given by the store; ID names one incarnation of
// the node and changes when the node is recreated (cycle, repair).
type Node struct {
	Index     int       `json:"index"`
	ID        string    `json:"id"`
	Address   string    `json:"address"`   // host name or IP the node is reached at
	AgentURL  string    `json:"agent_url"` // base URL of the node agent's API
	Backend   string    `json:"backend"`   // name of the VM backend that made it
	Image     string    `json:"image,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// NewNodeID names a new incarnation of the node at index that the VM
// backend named backend makes: "local-2-1a2b3c4d", random, so that a node
// made again is told from the one before.
func NewNodeID(backend string, index int) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", backend, index, hex.EncodeToString(b))
}

// NodeSpec is what a VM backend needs to create the node at Index.
type NodeSpec struct {
	Index int    `json:"index"`
	Image string `json:"image,omitempty"`
	// Keys is the content of the authorized_keys file installed on the node;
	// the node's agent accepts requests signed by any of these keys.
	Keys string `json:"keys"`
}

// State is the cluster state kept in the Store.
type State struct {
	// Revision is set by the store on Load; Save succeeds only if it still
	// equals the stored revision (compare-and-swap), and then increments it.
	Revision int64 `json:"revision"`
	// Count is the desired number of nodes, as last given to `dflow set`.
	Count int `json:"count"`
	// Nodes are the nodes the cluster has, sorted by Index.
	Nodes []Node `json:"nodes"`
	// Releases is the release history, oldest first (at most MaxReleases).
	Releases []Release `json:"releases,omitempty"`
	// Current is the ID of the release the cluster serves; 0 when none.
	Current int `json:"current,omitempty"`
	// Builds are the newest targets built (at most MaxBuilds), newest last:
	// what `copy --latest` ships.
	Builds []Target `json:"builds,omitempty"`
	// Repairs are the repair rounds that did something, newest last (at
	// most MaxRepairs).
	Repairs []RepairRecord `json:"repairs,omitempty"`
	// Chaos are chaos-monkey's kills, newest last (at most MaxChaos), with
	// the time the cluster took to be whole and healthy again.
	Chaos []ChaosRecord `json:"chaos,omitempty"`
	// Health are verify's verdicts, oldest first (at most MaxVerdicts per
	// node): what `dflow health` summarizes.
	Health []Verdict `json:"health,omitempty"`
	// Configs are the configuration revisions, oldest first: what each
	// release ran with, app.env's values included (see ConfigRevision).
	Configs []ConfigRevision `json:"configs,omitempty"`
}

// MaxBuilds bounds State.Builds.
const MaxBuilds = 20

// AddBuild records t as the newest build.
func (s *State) AddBuild(t Target) {
	s.Builds = append(s.Builds, t)
	if len(s.Builds) > MaxBuilds {
		s.Builds = append([]Target(nil), s.Builds[len(s.Builds)-MaxBuilds:]...)
	}
}

// Node returns the node at index and whether there is one.
func (s State) Node(index int) (Node, bool) {
	for _, n := range s.Nodes {
		if n.Index == index {
			return n, true
		}
	}
	return Node{}, false
}

// AddNode records n the way Store.Add's contract says: with n.Index ==
// AutoIndex the lowest free index is chosen; a node with n's ID already at
// the index is kept as it is (changed false); a node with another ID there
// is not replaced: takenBy names it. Stores call it inside their
// compare-and-swap and turn takenBy into backends.ErrIndexTaken.
func (s *State) AddNode(n Node) (index int, changed bool, takenBy string) {
	if n.Index == AutoIndex {
		n.Index = 0
		for {
			if _, ok := s.Node(n.Index); !ok {
				break
			}
			n.Index++
		}
	}
	if cur, ok := s.Node(n.Index); ok {
		if cur.ID == n.ID {
			return n.Index, false, ""
		}
		return n.Index, false, cur.ID
	}
	s.Nodes = append(s.Nodes, n)
	return n.Index, true, ""
}

// RemoveNode forgets the node at index the way Store.Remove's contract says:
// nothing there is no change; a node there whose ID is not id (when id is
// not empty) is kept, and takenBy names it.
func (s *State) RemoveNode(index int, id string) (changed bool, takenBy string) {
	for i, cur := range s.Nodes {
		if cur.Index != index {
			continue
		}
		if id != "" && cur.ID != id {
			return false, cur.ID
		}
		s.Nodes = append(s.Nodes[:i:i], s.Nodes[i+1:]...)
		return true, ""
	}
	return false, ""
}
