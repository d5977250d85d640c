package backends

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/distributive-flow/dflow/deploy"
)

// ErrConflict is returned by Store.Save when the state's revision is no longer
// the stored one: somebody else saved in between. Load again and retry.
var ErrConflict = errors.New("store: revision conflict")

// ErrIndexTaken is returned by Store.Add when the index already holds a node
// with another ID, and by Store.Remove when the index holds another node than
// the one named.
var ErrIndexTaken = errors.New("store: index holds another node")

// VMBackend makes nodes: Image -> Keys -> Node.
type VMBackend interface {
	// Create makes the node at s.Index and returns it once its agent answers.
	// It is idempotent per Index: if the node already exists and runs, the
	// existing node is returned unchanged; if it exists but is broken, it is
	// brought back at the same address.
	Create(ctx context.Context, s deploy.NodeSpec) (deploy.Node, error)
	// Destroy removes the node and everything running on it. Destroying a
	// node that is already gone is not an error. A node is named by Index
	// and ID: if the node at n.Index is another incarnation (n.ID set and
	// different), n is already gone and nothing is touched; an empty n.ID
	// names whatever is at n.Index.
	Destroy(ctx context.Context, n deploy.Node) error
	// List reports the nodes that really exist and run now (a node whose
	// agent died is not listed), sorted by Index. It is what repair trusts.
	List(ctx context.Context) ([]deploy.Node, error)
}

// Store keeps the cluster State (the seed's MStore). Implementations must be
// safe for use by several processes at once: two writers never lose an update.
type Store interface {
	// Load returns the current state with its revision. An empty store gives
	// the zero State (revision 0, no nodes).
	Load(ctx context.Context) (deploy.State, error)
	// Save replaces the state if s.Revision equals the stored revision, and
	// then increments the stored revision; otherwise it returns ErrConflict
	// and changes nothing.
	Save(ctx context.Context, s deploy.State) error
	// Add records n and returns its index. With n.Index == deploy.AutoIndex
	// the lowest free index is chosen. Adding a node whose ID is already
	// recorded at n.Index is a no-op (idempotent); an index that holds a
	// node with another ID gives ErrIndexTaken.
	Add(ctx context.Context, n deploy.Node) (int, error)
	// Remove forgets the node at index. Removing an index that holds no node
	// is not an error; if it holds a node whose ID differs from n.ID (and
	// n.ID is not empty), it returns ErrIndexTaken and changes nothing.
	Remove(ctx context.Context, index int, n deploy.Node) error
	// Close releases the store's resources.
	Close() error
}

// PackageReader reads a package file (*.cabal, package.yaml) into a TargetDesc.
type PackageReader interface {
	// Read parses the package file at path. Errors name the file and line.
	Read(ctx context.Context, path string) (deploy.TargetDesc, error)
}

// BuildOptions say what and where to build.
type BuildOptions struct {
	// Dir is the package's directory (the one holding the package file).
	Dir string
	// Targets are the artifact kinds to produce (deploy.KindExecutable, ...).
	Targets []string
	// Env is added to the build tools' environment (CABAL_DIR, ...).
	Env []string
	// WorkDir is scratch space the builder owns; the bundle is left in it.
	WorkDir string
	// Log receives the build tools' output; nil discards it.
	Log io.Writer
}

// Builder builds a package into a Target.
type Builder interface {
	// Build compiles the package d describes, runs its test suites (a
	// failing test fails the build), and bundles the artifacts o.Targets
	// asks for into a reproducible archive left at Target.BundlePath.
	// Errors say which step failed and end with the tool's last lines.
	Build(ctx context.Context, d deploy.TargetDesc, o BuildOptions) (deploy.Target, error)
}

// ErrLocked is what a Locker's Acquire error wraps when another holder has
// the cluster lock.
var ErrLocked = errors.New("cluster is locked")

// Locker is implemented by stores that can hold a cluster lock for
// operators that do not share a Temporal (the etcd store): a lock that
// lives on a lease, so a crashed holder never leaves it behind.
type Locker interface {
	// Acquire takes the lock for holder or fails at once naming whoever
	// holds it; it returns the lease the lock lives on (ttl after the last
	// keep-alive).
	Acquire(ctx context.Context, holder string, ttl time.Duration) (lease int64, err error)
	// Keep keeps the lease alive until ctx ends; it fails if the lease is
	// gone (the lock is lost).
	Keep(ctx context.Context, lease int64) error
	// Release frees the lock; a lease that is gone already is no error.
	Release(ctx context.Context, lease int64) error
}
