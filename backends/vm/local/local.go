package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/distributive-flow/dflow/agent"
	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/internal/loopback"
	"github.com/distributive-flow/dflow/backends/internal/nodedir"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/filelock"
	"github.com/distributive-flow/dflow/statedir"
	"golang.org/x/crypto/ssh"
)

// Name is the backend's name in dflow.yaml and --vm-backend.
const Name = "local"

// Options configure the backend.
type Options struct {
	// StateDir is the project's .dflow directory; nodes live in StateDir/nodes.
	StateDir string
	// Project is the project root, the owner of address claims.
	Project string
	// AgentPort is the agent API port on every node's address.
	AgentPort int
	// Command runs an agent: the agent flags are appended to it. Default:
	// this executable with the "agent" subcommand.
	Command []string
	// MachineDir holds the machine-wide address registry; default MachineDir().
	MachineDir string
	// Signer signs the status calls that tell when an agent is up.
	Signer ssh.Signer
	// StartTimeout bounds how long Create waits for a new agent; default 15s.
	StartTimeout time.Duration
}

// Backend makes local nodes.
type Backend struct {
	o Options
}

var (
	_ backends.VMBackend     = (*Backend)(nil)
	_ backends.RemainsLister = (*Backend)(nil)
)

// New returns the backend; it starts nothing.
func New(o Options) (*Backend, error) {
	if o.StateDir == "" || o.Project == "" || o.Signer == nil {
		return nil, errors.New("local backend: StateDir, Project and Signer are required")
	}
	if o.AgentPort == 0 {
		o.AgentPort = 7077
	}
	if len(o.Command) == 0 {
		cmd, err := agent.Command()
		if err != nil {
			return nil, fmt.Errorf("local backend: %w", err)
		}
		o.Command = cmd
	}
	if o.MachineDir == "" {
		o.MachineDir = MachineDir()
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 15 * time.Second
	}
	return &Backend{o: o}, nil
}

// MachineDir is where dflow keeps machine-wide state, the address registry
// among it: $DFLOW_MACHINE_DIR, else $XDG_STATE_HOME/dflow, else
// ~/.local/state/dflow (loopback.MachineDir).
func MachineDir() string { return loopback.MachineDir() }

func (b *Backend) nodeDir(index int) string {
	return filepath.Join(b.o.StateDir, "nodes", strconv.Itoa(index))
}

// Create makes the node at s.Index: a fresh directory and agent, or, when
// the directory exists, the same node with its agent restarted if it died
// (made anew when it was made from another image than s.Image). A create
// that fails removes what it made: the node's directory and agent, and the
// address it claimed.
func (b *Backend) Create(ctx context.Context, s deploy.NodeSpec) (deploy.Node, error) {
	if s.Index < 0 {
		return deploy.Node{}, fmt.Errorf("local backend: create node: bad index %d", s.Index)
	}
	return loopback.CreateOnClaim(ctx, b.o.MachineDir, b.o.Project, s.Index, 30*time.Second,
		func(ctx context.Context, addr string, made *bool) (deploy.Node, error) {
			return b.create(ctx, s, addr, made)
		},
		func(ctx context.Context) error { return b.Destroy(ctx, deploy.Node{Index: s.Index}) })
}

func (b *Backend) create(ctx context.Context, s deploy.NodeSpec, addr string, made *bool) (deploy.Node, error) {
	dir := b.nodeDir(s.Index)
	n, err := nodedir.Read(dir)
	if err == nil && n.Address == addr && n.Image != s.Image && !agent.Running(dir) {
		// A dead node (or one a crashed create left) of another image:
		// make it anew from the image asked for.
		if err := b.Destroy(ctx, deploy.Node{Index: s.Index}); err != nil {
			return deploy.Node{}, err
		}
		n, err = nodedir.Read(dir)
	}
	switch {
	case err == nil && n.Address == addr:
		if agent.Running(dir) {
			return n, b.waitReady(ctx, n, dir, nil)
		}
	case err == nil || errors.Is(err, os.ErrNotExist):
		n = deploy.Node{
			Index:     s.Index,
			ID:        deploy.NewNodeID(Name, s.Index),
			Address:   addr,
			AgentURL:  "http://" + net.JoinHostPort(addr, strconv.Itoa(b.o.AgentPort)),
			Backend:   Name,
			Image:     s.Image,
			CreatedAt: time.Now().UTC(),
		}
		*made = true
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return deploy.Node{}, err
		}
		if err := nodedir.Write(dir, n); err != nil {
			return deploy.Node{}, err
		}
	default:
		return deploy.Node{}, err
	}
	keys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(keys, []byte(s.Keys), statedir.FileMode); err != nil {
		return deploy.Node{}, fmt.Errorf("write authorized_keys: %w", err)
	}
	if err := statedir.Tighten(keys); err != nil { // made 0644 by an older dflow
		return deploy.Node{}, err
	}
	exited, err := b.spawn(dir, n)
	if err != nil {
		return deploy.Node{}, err
	}
	if err := b.waitReady(ctx, n, dir, exited); err != nil {
		return deploy.Node{}, err
	}
	return n, nil
}

// spawn starts the agent detached (own session, so it outlives its parent
// and its process group can be killed as one) and returns a channel that
// receives its exit.
func (b *Backend) spawn(dir string, n deploy.Node) (<-chan error, error) {
	logf, err := os.OpenFile(filepath.Join(dir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open agent log: %w", err)
	}
	defer logf.Close()
	argv := append(append([]string{}, b.o.Command...),
		"--dir", dir,
		"--listen", net.JoinHostPort(n.Address, strconv.Itoa(b.o.AgentPort)),
		"--index", strconv.Itoa(n.Index),
		"--node-id", n.ID,
	)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start agent %q: %w", strings.Join(argv, " "), err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reap it if it dies while we live
	return exited, nil
}

// waitReady returns once the node's agent answers an authenticated status
// call with the node's ID.
func (b *Backend) waitReady(ctx context.Context, n deploy.Node, dir string, exited <-chan error) error {
	logPath := filepath.Join(dir, "agent.log")
	return api.WaitReady(ctx, n.AgentURL, b.o.Signer, n.ID, b.o.StartTimeout, exited, api.AgentLog{
		Where: logPath, Tail: func(k int) string { return filelock.Tail(logPath, k) },
	})
}

// Destroy kills the node's agent and everything it started (its process
// group) and removes its directory. A node whose directory holds another
// incarnation (n.ID set and different) is already gone: nothing is touched.
func (b *Backend) Destroy(ctx context.Context, n deploy.Node) error {
	dir := b.nodeDir(n.Index)
	if nodedir.Gone(dir, n) {
		return nil
	}
	if err := b.kill(ctx, dir); err != nil {
		return fmt.Errorf("destroy node %d: %w", n.Index, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("destroy node %d: %w", n.Index, err)
	}
	return nil
}

// kill ends the agent's process group: SIGTERM, then SIGKILL after 5s.
func (b *Backend) kill(ctx context.Context, dir string) error {
	if !agent.Running(dir) {
		return nil
	}
	raw, err := os.ReadFile(agent.PIDPath(dir))
	if err != nil {
		return fmt.Errorf("agent runs but its pid file is unreadable: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("agent pid file %s holds %q", agent.PIDPath(dir), raw)
	}
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for agent.Running(dir) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL) // whatever is left of the group
	for i := 0; agent.Running(dir) && i < 250; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if agent.Running(dir) {
		return fmt.Errorf("agent pid %d survived SIGKILL", pid)
	}
	return nil
}

// List reports the nodes whose agent runs now.
func (b *Backend) List(ctx context.Context) ([]deploy.Node, error) {
	root := filepath.Join(b.o.StateDir, "nodes")
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var nodes []deploy.Node
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if !e.IsDir() || !agent.Running(dir) {
			continue
		}
		n, err := nodedir.Read(dir)
		if err != nil {
			return nil, fmt.Errorf("list nodes: %w", err)
		}
		nodes = append(nodes, n)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Index < nodes[j].Index })
	return nodes, nil
}

// Remains reports the indices that have a node directory, whether or not
// its agent runs.
func (b *Backend) Remains(ctx context.Context) ([]int, error) {
	return nodedir.Indices(filepath.Join(b.o.StateDir, "nodes"))
}
