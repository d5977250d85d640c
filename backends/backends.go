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

// RemainsLister is what a VMBackend may also do: tell where it holds
// anything of a node, whole or not. List reports the nodes that run; a
// create cut short by a crash (no undo ran) or a dead node leaves a
// container, machine or directory that List does not report, and that
// only Destroy of its index removes.
type RemainsLister interface {
	// Remains reports, sorted, the indices at which the backend holds
	// anything of a node (its container, machine, directory), whether or
	// not the node runs or ever answered. Destroy of such an index with an
	// empty ID removes it all.
	Remains(ctx context.Context) ([]int, error)
}

// ErrNotReady is what a ContainerBackend's Start error wraps when the new
// version did not pass its readiness gate: it was killed, and whatever the
// node served before still serves. Retrying the same start cannot help.
var ErrNotReady = errors.New("version did not become ready")

// Container is what a ContainerBackend made of a Target: what nodes run its
// versions from. Workflows carry it by value (references, never bytes).
type Container struct {
	// Package, Version and Digest are the Target's; Digest names the bundle
	// a node must hold before Start (the copy step puts it there).
	Package string `json:"package"`
	Version string `json:"version"`
	Digest  string `json:"digest"`
	// Image is the runnable made of the Target ("dflow-app/hello:0123abcd4567"
	// for Docker), or "" when nodes run the bundle's executable as a process.
	Image string `json:"image,omitempty"`
	// Built tells that this Containerize call made it; false when it existed
	// already or there was nothing to make.
	Built bool `json:"built,omitempty"`
}

// StartOptions say how to run a version and when it counts as ready.
type StartOptions struct {
	// ID names this start (deploy.Release.InstanceID()): at most 128 of
	// [A-Za-z0-9._-]. Start is idempotent on it.
	ID string `json:"id"`
	// Exec is the slash path of the executable in the bundle: "bin/hello".
	Exec string   `json:"exec"`
	Args []string `json:"args,omitempty"`
	// Env is the app's environment, on top of PORT, HOST, DFLOW_VERSION and
	// DFLOW_INDEX, which the node sets and Env may not override.
	Env map[string]string `json:"env,omitempty"`
	// Mode is how readiness is probed: "http" (GET HealthPath, default
	// "/health") or "tcp" (connect); default http.
	Mode         string        `json:"mode,omitempty"`
	HealthPath   string        `json:"health_path,omitempty"`
	ReadyProbes  int           `json:"ready_probes,omitempty"`  // consecutive good probes; default 3
	ReadyTimeout time.Duration `json:"ready_timeout,omitempty"` // default 30s
	// PublicPort is the node's public port (app.port), never a version's PORT.
	PublicPort int `json:"public_port,omitempty"`
}

// Process is one version of a Target running on one node.
type Process struct {
	ID      string      `json:"id"` // StartOptions.ID
	Node    deploy.Node `json:"node"`
	Version string      `json:"version"`
	Digest  string      `json:"digest"`
	Port    int         `json:"port,omitempty"` // its PORT, behind the node's proxy
	PID     int         `json:"pid,omitempty"`  // on the node (on the engine's host for a container)
	Log     string      `json:"log,omitempty"`  // its log file on the node
	// ListenWarning says that it listens beyond loopback (it ignored HOST),
	// where it can be reached around the node's proxy; "" otherwise.
	ListenWarning string `json:"listen_warning,omitempty"`
	// StartedAt is when the node started it (by the node's clock), before
	// its readiness gate: what Start took beyond it is the gate's.
	StartedAt time.Time `json:"started_at,omitzero"`
}

// StopOptions say how to stop a Process.
type StopOptions struct {
	// Now skips draining: SIGTERM at once, then Grace, then SIGKILL.
	Now bool `json:"now,omitempty"`
	// DrainTimeout bounds the wait for its requests in flight; default 30s.
	DrainTimeout time.Duration `json:"drain_timeout,omitempty"`
	// Grace is the time from SIGTERM to SIGKILL; default 10s.
	Grace time.Duration `json:"grace,omitempty"`
}

// ContainerBackend turns Targets into what nodes run, and runs and stops
// versions on nodes. The version runs under the node's agent, which owns
// the public port: a started version can then be switched to and drained
// like any other (agent/api).
type ContainerBackend interface {
	// Containerize makes what nodes run t from (an image, or nothing beyond
	// the bundle) and returns it. It is idempotent: the same Target gives
	// the same Container, and what exists is not made again (Built false).
	// A Target without an executable is an error that says so.
	Containerize(ctx context.Context, t deploy.Target) (Container, error)
	// Start runs c on node n as process o.ID and returns once it passed its
	// readiness gate; c's bundle must be on n already. A start that fails
	// the gate kills the new version, leaves what served before serving,
	// and returns an error that wraps ErrNotReady with the reason and the
	// last lines of its log. Start is idempotent on o.ID: the same ID again
	// returns the running process; an ID that names another version is an
	// error.
	Start(ctx context.Context, c Container, n deploy.Node, o StartOptions) (Process, error)
	// Stop ends p: unless o.Now, it waits for p's requests in flight
	// (bounded by o.DrainTimeout), then SIGTERM, o.Grace, SIGKILL; it
	// returns once p is gone. Stopping a process that is gone already
	// (stopped, exited, or unknown to the node) is not an error. Only
	// p.ID and p.Node are needed: a process can be stopped by a caller
	// that did not start it (one listed on the node).
	Stop(ctx context.Context, p Process, o StopOptions) error
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

// Update changes the state s keeps with compare-and-swap: it loads the
// state, applies f and saves the result; when another writer saved in
// between (ErrConflict), it loads again and applies f again, until a save
// goes through or ctx ends. f may thus run several times, each time on a
// fresh state; it returns false to leave the store as it is (nothing is
// saved). The error is s's (from Load, or from Save other than
// ErrConflict), or ctx's.
func Update(ctx context.Context, s Store, f func(*deploy.State) bool) error {
	for {
		st, err := s.Load(ctx)
		if err != nil {
			return err
		}
		if !f(&st) {
			return nil
		}
		err = s.Save(ctx, st)
		if err == nil || !errors.Is(err, ErrConflict) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
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
