package ssh

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/distributive-flow/dflow/agent"
	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
	gossh "golang.org/x/crypto/ssh"
)

// Name is the backend's name in dflow.yaml and --vm-backend.
const Name = "ssh"

// BinaryToken stands for the uploaded dflow executable in AgentCommand.
const BinaryToken = "{dflow}"

// Options configure the backend.
type Options struct {
	// Hosts is the inventory: the node at index i lives on Hosts[i].
	Hosts []Host
	// Login is the key that logs in to the hosts.
	Login gossh.Signer
	// Signer signs the status calls that tell when an agent is up.
	Signer gossh.Signer
	// KnownHosts is the known_hosts file host keys are checked against.
	KnownHosts string
	// AcceptNewHostKeys adds the key of a host that known_hosts does not
	// know yet to it (trust on first use); a changed key is still refused.
	AcceptNewHostKeys bool
	// AgentPort is the agent API port on every host.
	AgentPort int
	// RemoteDir holds the nodes and the executable on each host; relative
	// to the login's home directory unless absolute. Default ".dflow-node".
	RemoteDir string
	// Binary is the local dflow executable uploaded to the hosts; default
	// this executable.
	Binary string
	// AgentCommand runs the agent on a host, BinaryToken standing for the
	// uploaded Binary; the agent flags are appended. Default
	// [BinaryToken, "agent"].
	AgentCommand []string
	// ConnectTimeout bounds connecting and the SSH handshake; default 10s.
	ConnectTimeout time.Duration
	// StartTimeout bounds how long Create waits for a new agent; default 15s.
	StartTimeout time.Duration
	// Parallel bounds how many hosts List asks at once; default 16.
	Parallel int
}

// Backend makes nodes on the hosts of an inventory, over SSH.
type Backend struct {
	o    Options
	khMu sync.Mutex // appends to known_hosts

	sumOnce sync.Once
	sum     string
	sumErr  error
}

var (
	_ backends.VMBackend     = (*Backend)(nil)
	_ backends.RemainsLister = (*Backend)(nil)
)

// New returns the backend; it connects to nothing.
func New(o Options) (*Backend, error) {
	if len(o.Hosts) == 0 || o.Login == nil || o.Signer == nil || o.KnownHosts == "" {
		return nil, errors.New("ssh backend: Hosts, Login, Signer and KnownHosts are required")
	}
	if o.AgentPort == 0 {
		o.AgentPort = 7077
	}
	if o.RemoteDir == "" {
		o.RemoteDir = ".dflow-node"
	}
	if d := strings.Trim(o.RemoteDir, "/"); d == "" || d == "." || strings.Contains("/"+d+"/", "/../") {
		return nil, fmt.Errorf("ssh backend: RemoteDir %q: want a directory of dflow's own", o.RemoteDir)
	}
	if o.Binary == "" {
		// dflow-agent when it is installed beside dflow: 13 MB to upload
		// rather than dflow's 220 MB.
		cmd, err := agent.Command()
		if err != nil {
			return nil, fmt.Errorf("ssh backend: %w", err)
		}
		o.Binary = cmd[0]
		if len(o.AgentCommand) == 0 {
			o.AgentCommand = append([]string{BinaryToken}, cmd[1:]...)
		}
	}
	if len(o.AgentCommand) == 0 {
		o.AgentCommand = []string{BinaryToken, "agent"}
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 15 * time.Second
	}
	if o.Parallel == 0 {
		o.Parallel = 16
	}
	return &Backend{o: o}, nil
}

// binarySum is the sha256 of the local executable, computed once.
func (b *Backend) binarySum() (string, error) {
	b.sumOnce.Do(func() {
		f, err := os.Open(b.o.Binary)
		if err != nil {
			b.sumErr = fmt.Errorf("read the dflow executable: %w", err)
			return
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			b.sumErr = fmt.Errorf("read the dflow executable %s: %w", b.o.Binary, err)
			return
		}
		b.sum = hex.EncodeToString(h.Sum(nil))
	})
	return b.sum, b.sumErr
}

// dirExpr is RemoteDir as a sh word (relative paths under $HOME).
func (b *Backend) dirExpr() string {
	if strings.HasPrefix(b.o.RemoteDir, "/") {
		return quote(b.o.RemoteDir)
	}
	return `"$HOME"/` + quote(b.o.RemoteDir)
}

// vars is the preamble of every script: D the node directory, B the
// uploaded executable.
func (b *Backend) vars(index int, sum string) string {
	s := "D=" + b.dirExpr() + "/" + itoa(index) + "\n"
	if sum != "" {
		s += "B=" + b.dirExpr() + "/bin/dflow-" + sum[:16] + "\n"
	}
	return s
}

func (b *Backend) host(index int) (Host, bool) {
	if index < 0 || index >= len(b.o.Hosts) {
		return Host{}, false
	}
	return b.o.Hosts[index], true
}

func (b *Backend) agentURL(h Host) string {
	return "http://" + net.JoinHostPort(h.Addr, strconv.Itoa(b.o.AgentPort))
}

// probe is what a host says about itself and the node directory.
type probe struct {
	uname string       // uname -sm
	sum   string       // sha256 of the uploaded executable, "" if none
	node  *deploy.Node // node.json, nil if none
	dir   bool         // the node directory exists
}

const probeScript = `echo "uname $(uname -sm 2>/dev/null)"
if [ -n "${B:-}" ] && [ -f "$B" ]; then echo "sum $(sha256sum "$B" 2>/dev/null | cut -d' ' -f1)"; fi
if [ -d "$D" ]; then echo dir; fi
if [ -f "$D/node.json" ]; then echo node; cat "$D/node.json"; fi
`

func (b *Backend) probe(c *conn, index int, sum string) (probe, error) {
	out, err := c.run("look at the host", b.vars(index, sum)+probeScript, nil)
	if err != nil {
		return probe{}, err
	}
	var p probe
	rest := out
	for rest != "" {
		line, tail, _ := strings.Cut(rest, "\n")
		rest = tail
		switch {
		case strings.HasPrefix(line, "uname "):
			p.uname = strings.TrimPrefix(line, "uname ")
		case strings.HasPrefix(line, "sum "):
			p.sum = strings.TrimPrefix(line, "sum ")
		case line == "dir":
			p.dir = true
		case line == "node":
			var n deploy.Node
			if err := json.Unmarshal([]byte(rest), &n); err != nil {
				return p, fmt.Errorf("ssh %s: read node %d's node.json: %w", c.h, index, err)
			}
			p.node = &n
			rest = ""
		}
	}
	return p, nil
}

// answers tells whether n's agent answers as n.
func (b *Backend) answers(ctx context.Context, n deploy.Node, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return api.AnswersAs(ctx, n.AgentURL, b.o.Signer, n.ID)
}

// Create makes the node at s.Index on the s.Index-th host: the running node
// as it is if its agent answers, else the agent (re)started there, with the
// node's ID kept if the host already holds the node (of the same image: a
// dead node of another image is made anew). A create that fails after it
// made the node's directory on the host stops the agent it started there
// and removes the directory (the uploaded executable, shared by the host's
// nodes, stays).
func (b *Backend) Create(ctx context.Context, s deploy.NodeSpec) (deploy.Node, error) {
	n, err := b.create(ctx, s)
	if err != nil {
		return deploy.Node{}, fmt.Errorf("create node %d: %w", s.Index, err)
	}
	return n, nil
}

func (b *Backend) create(ctx context.Context, s deploy.NodeSpec) (deploy.Node, error) {
	h, ok := b.host(s.Index)
	if !ok {
		return deploy.Node{}, fmt.Errorf("the inventory has %d hosts (indices 0-%d): add a host for index %d", len(b.o.Hosts), len(b.o.Hosts)-1, s.Index)
	}
	sum, err := b.binarySum()
	if err != nil {
		return deploy.Node{}, err
	}
	c, err := b.dial(ctx, h)
	if err != nil {
		return deploy.Node{}, err
	}
	defer c.Close()
	p, err := b.probe(c, s.Index, sum)
	if err != nil {
		return deploy.Node{}, err
	}
	var n deploy.Node
	made := true
	if p.node != nil && p.node.Index == s.Index && p.node.Address == h.Addr {
		n = *p.node
		if b.answers(ctx, n, 3*time.Second) == nil {
			return n, nil
		}
		made = n.Image != s.Image
	}
	if made {
		n = deploy.Node{
			Index:     s.Index,
			ID:        deploy.NewNodeID(Name, s.Index),
			Address:   h.Addr,
			AgentURL:  b.agentURL(h),
			Backend:   Name,
			Image:     s.Image,
			CreatedAt: time.Now().UTC(),
		}
	}
	if err := checkPlatform(p.uname); err != nil {
		return deploy.Node{}, fmt.Errorf("ssh %s: look at the host: %w", h, err)
	}
	if p.sum != sum {
		if err := b.upload(c, s.Index, sum); err != nil {
			return deploy.Node{}, err
		}
	}
	err = b.start(c, n, s.Keys, sum)
	if err == nil {
		err = b.waitReady(ctx, c, n)
	}
	if err != nil && made {
		err = errors.Join(err, b.undo(ctx, h, n))
	}
	if err != nil {
		return deploy.Node{}, err
	}
	return n, nil
}

// undo stops the agent a failed create started for the node it made and
// removes the node's directory, over a connection of its own (ctx ending
// closed the create's).
func (b *Backend) undo(ctx context.Context, h Host, n deploy.Node) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.o.ConnectTimeout+30*time.Second)
	defer cancel()
	c, err := b.dial(ctx, h)
	if err == nil {
		defer c.Close()
		_, err = c.run("remove what the failed create made", b.vars(n.Index, "")+stopScript+`rm -rf "$D"`+"\n", nil)
	}
	if err != nil {
		return fmt.Errorf("and removing what it made failed too: %w", err)
	}
	return nil
}

// checkPlatform refuses a host that cannot run this executable.
func checkPlatform(uname string) error {
	fields := strings.Fields(uname)
	if len(fields) != 2 {
		return nil // unknown: let the agent's start tell
	}
	if fields[0] != "Linux" && runtime.GOOS == "linux" {
		return fmt.Errorf("the host runs %s; this dflow is built for %s/%s", uname, runtime.GOOS, runtime.GOARCH)
	}
	want := map[string][]string{
		"amd64": {"x86_64"}, "arm64": {"aarch64", "arm64"}, "386": {"i386", "i686"},
		"arm": {"armv6l", "armv7l"}, "riscv64": {"riscv64"}, "ppc64le": {"ppc64le"}, "s390x": {"s390x"},
	}[runtime.GOARCH]
	if want == nil {
		return nil
	}
	for _, w := range want {
		if fields[1] == w {
			return nil
		}
	}
	return fmt.Errorf("the host is %s; this dflow is built for %s/%s (run a dflow built for the host's architecture)", uname, runtime.GOOS, runtime.GOARCH)
}

// upload copies the executable to B through a temporary file, checking its
// sha256 on the host before putting it in place.
func (b *Backend) upload(c *conn, index int, sum string) error {
	f, err := os.Open(b.o.Binary)
	if err != nil {
		return fmt.Errorf("ssh %s: upload dflow: %w", c.h, err)
	}
	defer f.Close()
	script := b.vars(index, sum) + `set -e
mkdir -p "$(dirname "$B")"
T="$B.tmp.$$"
trap 'rm -f "$T"' EXIT
cat > "$T"
got=$(sha256sum "$T" | cut -d' ' -f1)
if [ "$got" != ` + quote(sum) + ` ]; then echo "the uploaded file's sha256 is $got, want ` + sum + `" >&2; exit 1; fi
chmod 755 "$T"
mv -f "$T" "$B"
`
	_, err = c.run("upload dflow", script, f)
	return err
}

// stopScript ends the agent of node directory $D and what is left of its
// process group: SIGTERM, up to 5s, SIGKILL. A pid file whose process is
// not an agent of $D (the pid was reused) is left alone.
const stopScript = `alive() { [ -r /proc/$1/status ] && ! grep -q '^State:[[:space:]]*Z' /proc/$1/status; }
if [ -s "$D/agent.pid" ]; then
  pid=$(cat "$D/agent.pid")
  case "$pid" in ''|*[!0-9]*) pid=0;; esac
  if [ "$pid" -gt 1 ]; then
    if [ -r /proc/$pid/cmdline ]; then
      if tr '\0' '\n' < /proc/$pid/cmdline | grep -qxF -- "$D"; then
        kill -s TERM -- -$pid 2>/dev/null || kill -s TERM $pid 2>/dev/null || true
        i=0
        while [ $i -lt 100 ] && alive $pid; do sleep 0.05; i=$((i+1)); done
        kill -s KILL -- -$pid 2>/dev/null || true
      fi
    else
      kill -s KILL -- -$pid 2>/dev/null || true
    fi
  fi
fi
`

// start writes the node's files and starts its agent detached, returning
// once the agent wrote its pid file (it has bound its address).
func (b *Backend) start(c *conn, n deploy.Node, keys, sum string) error {
	nj, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		return err
	}
	var cmd []string
	for _, w := range b.o.AgentCommand {
		if w == BinaryToken {
			cmd = append(cmd, `"$B"`)
		} else {
			cmd = append(cmd, quote(w))
		}
	}
	cmd = append(cmd, "--dir", `"$D"`,
		"--listen", quote(net.JoinHostPort(n.Address, strconv.Itoa(b.o.AgentPort))),
		"--index", itoa(n.Index), "--node-id", quote(n.ID))
	polls := int(b.o.StartTimeout / (50 * time.Millisecond))
	script := b.vars(n.Index, sum) + `set -e
mkdir -p "$D"
cd "$D"
` + stopScript + `rm -f agent.pid
umask 077
printf '%s' ` + quote(keys) + ` > authorized_keys.tmp
mv -f authorized_keys.tmp authorized_keys
umask 022
printf '%s\n' ` + quote(string(nj)) + ` > node.json.tmp
mv -f node.json.tmp node.json
if command -v setsid >/dev/null 2>&1; then S=setsid; else S=nohup; fi
$S ` + strings.Join(cmd, " ") + ` >> agent.log 2>&1 < /dev/null &
P=$!
i=0
while [ $i -lt ` + itoa(polls) + ` ]; do
  [ -s agent.pid ] && exit 0
  if ! alive $P; then
    sleep 0.2
    [ -s agent.pid ] && exit 0
    echo "the agent exited at once; last lines of $D/agent.log:" >&2
    tail -n 15 agent.log >&2
    exit 3
  fi
  sleep 0.05
  i=$((i+1))
done
echo "the agent wrote no pid file within ` + b.o.StartTimeout.String() + `; last lines of $D/agent.log:" >&2
tail -n 15 agent.log >&2
exit 4
`
	_, err = c.run("start agent", script, nil)
	return err
}

// waitReady returns once n's agent answers an authenticated status call
// as n; on timeout the error ends with the agent's log.
func (b *Backend) waitReady(ctx context.Context, c *conn, n deploy.Node) error {
	ctx, cancel := context.WithTimeout(ctx, b.o.StartTimeout)
	defer cancel()
	var last error
	for {
		if last = b.answers(ctx, n, 2*time.Second); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			tail, _ := c.run("read agent log", b.vars(n.Index, "")+`tail -n 10 "$D/agent.log"`, nil)
			return fmt.Errorf("ssh %s: wait for agent: agent at %s not ready after %s: %w; last lines of its agent.log:\n%s", c.h, n.AgentURL, b.o.StartTimeout, last, tail)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// Destroy stops the node's agent (its process group) and removes its
// directory. A node whose host holds another incarnation (n.ID set and
// different), or none, is already gone; so is a node whose index is no
// longer in the inventory.
func (b *Backend) Destroy(ctx context.Context, n deploy.Node) error {
	h, ok := b.host(n.Index)
	if !ok {
		return nil
	}
	c, err := b.dial(ctx, h)
	if err != nil {
		return fmt.Errorf("destroy node %d: %w", n.Index, err)
	}
	defer c.Close()
	p, err := b.probe(c, n.Index, "")
	if err != nil {
		return fmt.Errorf("destroy node %d: %w", n.Index, err)
	}
	if p.node == nil && (!p.dir || n.ID != "") {
		return nil // an empty ID names a directory without a record too
	}
	if p.node != nil && n.ID != "" && p.node.ID != n.ID {
		return nil
	}
	if _, err := c.run("stop agent", b.vars(n.Index, "")+stopScript+`rm -rf "$D"`+"\n", nil); err != nil {
		return fmt.Errorf("destroy node %d: %w", n.Index, err)
	}
	return nil
}

// List asks every host of the inventory, Parallel at a time, for its node
// and the node's agent for its status: a host that does not answer, holds
// no node, or whose agent does not answer as the node is not listed.
func (b *Backend) List(ctx context.Context) ([]deploy.Node, error) {
	found := make([]*deploy.Node, len(b.o.Hosts))
	b.eachHost(func(i int, h Host) { found[i] = b.listHost(ctx, i, h) })
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	nodes := []deploy.Node{}
	for _, n := range found {
		if n != nil {
			nodes = append(nodes, *n)
		}
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Index < nodes[j].Index })
	return nodes, nil
}

// Remains reports the indices whose host holds a node directory, whether
// or not its agent answers. A host that does not answer is left out: what
// it holds cannot be told (and Destroy fails on it).
func (b *Backend) Remains(ctx context.Context) ([]int, error) {
	held := make([]bool, len(b.o.Hosts))
	b.eachHost(func(i int, h Host) {
		c, err := b.dial(ctx, h)
		if err != nil {
			return
		}
		defer c.Close()
		p, err := b.probe(c, i, "")
		held[i] = err == nil && p.dir
	})
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("node remains: %w", err)
	}
	out := []int{}
	for i, ok := range held {
		if ok {
			out = append(out, i)
		}
	}
	return out, nil
}

// eachHost runs f for every host of the inventory, Parallel at a time, and
// returns when all are done.
func (b *Backend) eachHost(f func(index int, h Host)) {
	sem := make(chan struct{}, b.o.Parallel)
	var wg sync.WaitGroup
	for i, h := range b.o.Hosts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			f(i, h)
		})
	}
	wg.Wait()
}

func (b *Backend) listHost(ctx context.Context, index int, h Host) *deploy.Node {
	c, err := b.dial(ctx, h)
	if err != nil {
		return nil
	}
	p, err := b.probe(c, index, "")
	c.Close()
	if err != nil || p.node == nil || p.node.Index != index {
		return nil
	}
	if b.answers(ctx, *p.node, 3*time.Second) != nil {
		return nil
	}
	return p.node
}
