package vagrant

import (
	"bytes"
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
	"time"

	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/internal/loopback"
	"github.com/distributive-flow/dflow/backends/internal/nodedir"
	"github.com/distributive-flow/dflow/deploy"
	"golang.org/x/crypto/ssh"
)

// Name is the backend's name in dflow.yaml and --vm-backend.
const Name = "vagrant"

// BinaryToken stands for the dflow executable (inside the machine) in
// AgentCommand.
const BinaryToken = "{dflow}"

// Options configure the backend.
type Options struct {
	// StateDir is the project's .dflow directory; machines live in
	// StateDir/vagrant/<index>.
	StateDir string
	// Project is the project root, the owner of address claims.
	Project string
	// Vagrant is the vagrant executable; default "vagrant" from PATH.
	Vagrant string
	// Env is added to vagrant's environment (VAGRANT_CHECKPOINT_DISABLE=1
	// is always set: no network calls home).
	Env []string
	// Provider is the Vagrant provider; default "docker".
	Provider string
	// Image is the box (docker provider: the docker image) when a NodeSpec
	// names none.
	Image string
	// AgentPort is the agent API port; Ports are more ports forwarded to the
	// node's address (the app's port).
	AgentPort int
	Ports     []int
	// Binary is the dflow executable the machines run; default this one.
	// With the docker provider it is mounted, so it must run in the image
	// (a static build runs in any).
	Binary string
	// AgentCommand runs the agent inside the machine, BinaryToken standing
	// for the dflow executable; the agent flags are appended. Default
	// [BinaryToken, "agent"]. AgentEnv is added to its environment.
	AgentCommand []string
	AgentEnv     []string
	// Signer signs the status calls that tell when an agent is up.
	Signer ssh.Signer
	// MachineDir holds the machine-wide address registry (loopback.MachineDir()).
	MachineDir string
	// StartTimeout bounds how long Create waits for an agent after `vagrant
	// up`; default 60s (a VM boots first: vagrant up itself is not bounded
	// by it, only by ctx).
	StartTimeout time.Duration
}

// Backend makes nodes as Vagrant machines.
type Backend struct{ o Options }

var (
	_ backends.VMBackend     = (*Backend)(nil)
	_ backends.RemainsLister = (*Backend)(nil)
)

// New returns the backend; it runs nothing.
func New(o Options) (*Backend, error) {
	if o.StateDir == "" || o.Project == "" || o.Signer == nil || o.MachineDir == "" {
		return nil, errors.New("vagrant backend: StateDir, Project, MachineDir and Signer are required")
	}
	if o.Vagrant == "" {
		o.Vagrant = "vagrant"
	}
	if o.Provider == "" {
		o.Provider = "docker"
	}
	if o.AgentPort == 0 {
		o.AgentPort = 7077
	}
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("vagrant backend: find the dflow executable: %w", err)
		}
		o.Binary = exe
	}
	if abs, err := filepath.Abs(o.Binary); err == nil {
		o.Binary = abs
	}
	if len(o.AgentCommand) == 0 {
		o.AgentCommand = []string{BinaryToken, "agent"}
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	return &Backend{o: o}, nil
}

func (b *Backend) nodeDir(index int) string {
	return filepath.Join(b.o.StateDir, "vagrant", strconv.Itoa(index))
}

// vagrant runs `vagrant args...` in dir and returns its standard output; a
// failure ends with the last lines vagrant printed.
func (b *Backend) vagrant(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, b.o.Vagrant, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "VAGRANT_CHECKPOINT_DISABLE=1", "VAGRANT_NO_COLOR=1"), b.o.Env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = strings.TrimSpace(out.String())
		}
		return out.String(), fmt.Errorf("vagrant %s (in %s): %w\n%s", strings.Join(args, " "), dir, err, lastLines(msg, 15))
	}
	return out.String(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// state is the machine's state from `vagrant status --machine-readable`:
// running, stopped, not_created, ...
func (b *Backend) state(ctx context.Context, dir string) (string, error) {
	out, err := b.vagrant(ctx, dir, "status", "--machine-readable")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) >= 4 && f[2] == "state" {
			return f[3], nil
		}
	}
	return "", fmt.Errorf("vagrant status --machine-readable (in %s) named no state:\n%s", dir, lastLines(out, 5))
}

// answers tells whether n's agent answers as n.
func (b *Backend) answers(ctx context.Context, n deploy.Node, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return api.AnswersAs(ctx, n.AgentURL, b.o.Signer, n.ID)
}

// Create brings up the machine of node s.Index and returns once its agent
// answers: the running node as it is, a stopped machine started again (same
// ID and address), or a new one; a machine of another image than asked
// whose agent does not answer is made anew. A create that fails removes
// what it made: the machine (`vagrant destroy -f`, and with the docker
// provider a container vagrant lost track of), the node's directory, and
// the address it claimed.
func (b *Backend) Create(ctx context.Context, s deploy.NodeSpec) (deploy.Node, error) {
	if s.Index < 0 {
		return deploy.Node{}, fmt.Errorf("create node %d: bad index %d", s.Index, s.Index)
	}
	return loopback.CreateOnClaim(ctx, b.o.MachineDir, b.o.Project, s.Index, 2*time.Minute,
		func(ctx context.Context, addr string, made *bool) (deploy.Node, error) {
			return b.create(ctx, s, addr, made)
		},
		func(ctx context.Context) error { return b.destroy(ctx, s.Index) })
}

func (b *Backend) create(ctx context.Context, s deploy.NodeSpec, addr string, made *bool) (deploy.Node, error) {
	image := s.Image
	if image == "" {
		image = b.o.Image
	}
	dir := b.nodeDir(s.Index)
	n, err := nodedir.Read(dir)
	existing := err == nil && n.Address == addr
	if existing && b.answers(ctx, n, 3*time.Second) == nil {
		return n, nil
	}
	if existing && n.Image != image {
		// A dead node (or one a failed create left) of another image:
		// make it anew from the image asked for.
		if err := b.destroy(ctx, s.Index); err != nil {
			return deploy.Node{}, fmt.Errorf("remove the machine of image %q to make it of image %q: %w", n.Image, image, err)
		}
		existing, err = false, os.ErrNotExist
	}
	switch {
	case existing:
	case err == nil || errors.Is(err, os.ErrNotExist):
		if image == "" {
			return deploy.Node{}, fmt.Errorf("no image: the vagrant backend needs a box (docker provider: a docker image): set image in dflow.yaml or --image")
		}
		n = deploy.Node{
			Index:     s.Index,
			ID:        deploy.NewNodeID(Name, s.Index),
			Address:   addr,
			AgentURL:  "http://" + net.JoinHostPort(addr, strconv.Itoa(b.o.AgentPort)),
			Backend:   Name,
			Image:     image,
			CreatedAt: time.Now().UTC(),
		}
		*made = true
	default:
		return deploy.Node{}, err
	}
	if err := b.writeFiles(dir, n, s.Keys); err != nil {
		return deploy.Node{}, err
	}
	if existing {
		// The machine may run with a dead or stuck agent: start it again.
		st, err := b.state(ctx, dir)
		if err != nil {
			return deploy.Node{}, err
		}
		if st == "running" {
			args := []string{"reload"}
			if b.o.Provider != "docker" {
				args = []string{"provision", "--provision-with", "dflow-keys,dflow-agent"}
			}
			if _, err := b.vagrant(ctx, dir, args...); err != nil {
				return deploy.Node{}, err
			}
			return n, b.waitReady(ctx, dir, n)
		}
	}
	if _, err := b.vagrant(ctx, dir, "up", "--provider="+b.o.Provider); err != nil {
		// The agent may have exited so soon that vagrant itself saw the
		// machine stop: say so, with the agent's own last words.
		if st, serr := b.state(ctx, dir); serr == nil && (st == "stopped" || st == "poweroff") {
			return deploy.Node{}, fmt.Errorf("the machine is %s, its agent is not running; %s\n(%w)", st, b.agentLog(dir), err)
		}
		return deploy.Node{}, err
	}
	return n, b.waitReady(ctx, dir, n)
}

// writeFiles writes the node's Vagrantfile, node.json and authorized_keys.
func (b *Backend) writeFiles(dir string, n deploy.Node, keys string) error {
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o755); err != nil {
		return err
	}
	m := machine{
		Provider: b.o.Provider, Image: n.Image, Binary: b.o.Binary, Dir: dir, Address: n.Address,
		Ports: append([]int{b.o.AgentPort}, b.o.Ports...), Agent: b.o.AgentCommand, AgentEnv: b.o.AgentEnv,
		Index: n.Index, NodeID: n.ID, AgentPort: b.o.AgentPort,
	}
	if abs, err := filepath.Abs(dir); err == nil {
		m.Dir = abs
	}
	if err := nodedir.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(keys), 0o600); err != nil {
		return fmt.Errorf("write authorized_keys: %w", err)
	}
	if err := nodedir.WriteFile(filepath.Join(dir, "Vagrantfile"), []byte(m.vagrantfile()), 0o644); err != nil {
		return fmt.Errorf("write Vagrantfile: %w", err)
	}
	if err := nodedir.Write(dir, n); err != nil {
		return fmt.Errorf("write %s: %w", nodedir.Record, err)
	}
	return nil
}

// waitReady returns once n's agent answers. A machine that stops meanwhile
// (the agent exited: with docker it is the container's command) fails at
// once with the machine's log.
func (b *Backend) waitReady(ctx context.Context, dir string, n deploy.Node) error {
	ctx, cancel := context.WithTimeout(ctx, b.o.StartTimeout)
	defer cancel()
	started := time.Now()
	nextState := started.Add(2 * time.Second)
	var last error
	for {
		if last = b.answers(ctx, n, 2*time.Second); last == nil {
			return nil
		}
		if time.Now().After(nextState) {
			nextState = time.Now().Add(3 * time.Second)
			if st, err := b.state(ctx, dir); err == nil && st != "running" {
				return fmt.Errorf("the machine is %s, its agent is not running; %s", st, b.agentLog(dir))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("agent at %s not ready after %s: %w; %s", n.AgentURL, b.o.StartTimeout, last, b.agentLog(dir))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// agentLog is the agent's last output, for errors.
func (b *Backend) agentLog(dir string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out string
	var err error
	if b.o.Provider == "docker" {
		out, err = b.vagrant(ctx, dir, "docker-logs")
	} else {
		out, err = b.vagrant(ctx, dir, "ssh", "-c", "tail -n 15 "+guestDir+"/agent.log")
	}
	if err != nil {
		return "and its log is unreadable: " + err.Error()
	}
	return "its last output:\n" + lastLines(strings.TrimSpace(out), 15)
}

// Destroy runs `vagrant destroy -f` for the node and removes its directory
// (with the docker provider, also a container of the node that vagrant
// lost track of). A node whose directory holds another incarnation (n.ID
// set and different), or none, is already gone: nothing is touched.
func (b *Backend) Destroy(ctx context.Context, n deploy.Node) error {
	if nodedir.Gone(b.nodeDir(n.Index), n) {
		return nil
	}
	if err := b.destroy(ctx, n.Index); err != nil {
		return fmt.Errorf("destroy node %d: %w", n.Index, err)
	}
	return nil
}

// destroy removes whatever node index has: its machine, a docker
// provider's container vagrant lost track of, its directory.
func (b *Backend) destroy(ctx context.Context, index int) error {
	dir := b.nodeDir(index)
	// Without .vagrant, vagrant never made anything here (vagrant up
	// failed at once, or never ran).
	if _, err := os.Stat(filepath.Join(dir, ".vagrant")); err == nil {
		if _, err := b.vagrant(ctx, dir, "destroy", "-f"); err != nil {
			return err
		}
	}
	if b.o.Provider == "docker" {
		if err := b.removeContainers(ctx, dir); err != nil {
			return err
		}
	}
	return os.RemoveAll(dir)
}

// removeContainers removes the docker containers labelled as node dir's
// (docker provider), which `vagrant destroy` leaves when vagrant never
// recorded them: an up cut short.
func (b *Backend) removeContainers(ctx context.Context, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "docker", "ps", "-aq", "--filter", "label="+LabelMachineDir+"="+abs).Output()
	if err != nil {
		if _, lerr := exec.LookPath("docker"); lerr != nil {
			return nil // no docker CLI: vagrant's docker provider could make nothing
		}
		return fmt.Errorf("docker ps: %w", err)
	}
	ids := strings.Fields(string(out))
	if len(ids) == 0 {
		return nil
	}
	if out, err := exec.CommandContext(ctx, "docker", append([]string{"rm", "-f"}, ids...)...).CombinedOutput(); err != nil {
		return fmt.Errorf("docker rm -f %s: %w: %s", strings.Join(ids, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// List reports the nodes whose agent answers as the node (the agent runs
// inside the machine, so its answer says the machine runs too).
func (b *Backend) List(ctx context.Context) ([]deploy.Node, error) {
	root := filepath.Join(b.o.StateDir, "vagrant")
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return []deploy.Node{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	type result struct{ n *deploy.Node }
	results := make([]result, len(entries))
	done := make(chan struct{}, len(entries))
	for i, e := range entries {
		go func() {
			defer func() { done <- struct{}{} }()
			if !e.IsDir() {
				return
			}
			n, err := nodedir.Read(filepath.Join(root, e.Name()))
			if err != nil || b.answers(ctx, n, 3*time.Second) != nil {
				return
			}
			results[i].n = &n
		}()
	}
	for range entries {
		<-done
	}
	nodes := []deploy.Node{}
	for _, r := range results {
		if r.n != nil {
			nodes = append(nodes, *r.n)
		}
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Index < nodes[j].Index })
	return nodes, nil
}

// Remains reports the indices that have a node directory (a machine, or
// what a create left of one), whether or not its agent answers.
func (b *Backend) Remains(ctx context.Context) ([]int, error) {
	return nodedir.Indices(filepath.Join(b.o.StateDir, "vagrant"))
}
