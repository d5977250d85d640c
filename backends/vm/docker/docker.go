package docker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distributive-flow/dflow/agent"
	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/internal/dockerengine"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"golang.org/x/crypto/ssh"
)

// Name is the backend's name in dflow.yaml and --vm-backend.
const Name = "docker"

// Labels the backend puts on what it makes.
const (
	LabelCluster = "dflow.cluster"
	LabelIndex   = "dflow.index"
	LabelNodeID  = "dflow.node-id"
	LabelRole    = "dflow.role" // "node"; the agent's app containers say "app"
	LabelAddress = "dflow.address"
	LabelImage   = "dflow.image" // NodeSpec.Image, "" for the built one
	LabelCreated = "dflow.created"
)

// NodeDir is the agent's directory inside a node.
const NodeDir = "/var/lib/dflow"

// DockerSocket is where the Docker socket is, on the host and in a node.
const DockerSocket = "/var/run/docker.sock"

// NetworkEnv tells a node's agent the Docker network its app containers
// join (agent/docker.go reads it).
const NetworkEnv = "DFLOW_DOCKER_NETWORK"

// Options configure the backend.
type Options struct {
	// Cluster names the network (dflow-<cluster>) and the containers
	// (dflow-<cluster>-<index>).
	Cluster string
	// AgentPort is the agent API port on every node's address; default 7077.
	AgentPort int
	// Signer signs the status calls that tell when an agent is up.
	Signer ssh.Signer
	// Client reaches the Docker engine; default dockerengine.Connect().
	Client client.APIClient
	// Binary is the dflow executable put in the built node image; default
	// this executable.
	Binary string
	// DockerSocket, when set, is the host's Docker socket to bind-mount at
	// /var/run/docker.sock in every node (the docker container backend
	// needs it). Such nodes control the host's Docker engine.
	DockerSocket string
	// Labels are added to every container and network the backend makes.
	Labels map[string]string
	// StartTimeout bounds how long Create waits for a new agent; default 30s.
	StartTimeout time.Duration
}

// Backend makes nodes as Docker containers.
type Backend struct {
	o   Options
	cli client.APIClient
}

var (
	_ backends.VMBackend     = (*Backend)(nil)
	_ backends.RemainsLister = (*Backend)(nil)
)

// New returns the backend; it touches nothing.
func New(o Options) (*Backend, error) {
	if o.Cluster == "" || o.Signer == nil {
		return nil, errors.New("docker vm backend: Cluster and Signer are required")
	}
	if o.AgentPort == 0 {
		o.AgentPort = 7077
	}
	if o.Binary == "" {
		// dflow-agent when it is beside dflow: a 13 MB binary in the node
		// image rather than dflow's 220 MB.
		cmd, err := agent.Command()
		if err != nil {
			return nil, fmt.Errorf("docker vm backend: %w", err)
		}
		o.Binary = cmd[0]
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 30 * time.Second
	}
	labels := dockerengine.ExtraLabels()
	for k, v := range o.Labels {
		labels[k] = v
	}
	o.Labels = labels
	if o.Client == nil {
		c, err := dockerengine.Connect()
		if err != nil {
			return nil, fmt.Errorf("docker vm backend: %w", err)
		}
		o.Client = c
	}
	return &Backend{o: o, cli: o.Client}, nil
}

// Cluster is the cluster's name (Options.Cluster).
func (b *Backend) Cluster() string { return b.o.Cluster }

// NetworkName is the cluster's Docker network.
func (b *Backend) NetworkName() string { return "dflow-" + b.o.Cluster }

// ContainerName is the container of the node at index.
func (b *Backend) ContainerName(index int) string {
	return fmt.Sprintf("dflow-%s-%d", b.o.Cluster, index)
}

// Create makes the node at s.Index: a new container, or, when the container
// exists, the same node (its agent started again if it died). A container
// made from another image than s.Image whose agent is dead or does not
// answer is made anew from s.Image. A create that fails removes the
// container it made (and the network, when no node is left on it).
func (b *Backend) Create(ctx context.Context, s deploy.NodeSpec) (deploy.Node, error) {
	if s.Index < 0 {
		return deploy.Node{}, fmt.Errorf("docker vm backend: create node: bad index %d", s.Index)
	}
	made := ""
	n, err := b.create(ctx, s, &made)
	if err != nil {
		err = errors.Join(err, b.undo(ctx, s.Index, made))
		return deploy.Node{}, fmt.Errorf("create node %d (container %s): %w", s.Index, b.ContainerName(s.Index), err)
	}
	return n, nil
}

// undo removes the container a failed create made (the one of node ID
// made, "" when it made none), and the cluster's network when no container
// is left on it. ctx may have ended (the engine may have made the container
// all the same): undo runs on a context of its own.
func (b *Backend) undo(ctx context.Context, index int, made string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if made != "" {
		if err := b.Destroy(ctx, deploy.Node{Index: index, ID: made}); err != nil {
			return fmt.Errorf("and removing the container it made failed too: %w", err)
		}
	}
	b.removeNetworkIfUnused(ctx)
	return nil
}

// stale tells whether the existing container c, made from another image
// than asked, is to be made anew: its agent is dead or does not answer.
func (b *Backend) stale(ctx context.Context, c container.InspectResponse, n deploy.Node, image string) bool {
	if n.Image == image {
		return false
	}
	if c.State == nil || !c.State.Running {
		return true
	}
	actx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return api.AnswersAs(actx, n.AgentURL, b.o.Signer, n.ID) != nil
}

// create makes the node; made receives the node ID of the container it
// makes, before the engine is asked to make it.
func (b *Backend) create(ctx context.Context, s deploy.NodeSpec, made *string) (deploy.Node, error) {
	name := b.ContainerName(s.Index)
	for attempt := 0; ; attempt++ {
		c, err := b.cli.ContainerInspect(ctx, name)
		if err == nil {
			n, err := b.nodeOf(c.Config.Labels)
			if err != nil {
				return deploy.Node{}, err
			}
			if n.Index != s.Index {
				return deploy.Node{}, fmt.Errorf("the container says it is node %d", n.Index)
			}
			if attempt == 0 && b.stale(ctx, c, n, s.Image) {
				// Left by a create that failed or was cut short, or a
				// dead node: make it anew from the image asked for.
				if err := b.Destroy(ctx, n); err != nil {
					return deploy.Node{}, fmt.Errorf("remove the node of image %q to make it of image %q: %w", n.Image, s.Image, err)
				}
				continue
			}
			if c.State != nil && c.State.Running {
				return n, b.waitReady(ctx, n, c.ID, nil)
			}
			// It died: start it again, same node, same address.
			if err := b.start(ctx, c.ID, s.Keys); err != nil {
				if attempt > 0 {
					return deploy.Node{}, err
				}
				// It cannot come back (its network went away, ...): make
				// it anew at the same address.
				if rerr := b.remove(ctx, c.ID); rerr != nil {
					return deploy.Node{}, errors.Join(err, rerr)
				}
				continue
			}
			exited := b.exited(ctx, c.ID)
			return n, b.waitReady(ctx, n, c.ID, exited)
		}
		if !cerrdefs.IsNotFound(err) {
			return deploy.Node{}, fmt.Errorf("inspect: %w", err)
		}
		n, id, err := b.make(ctx, s, name, made)
		if cerrdefs.IsConflict(err) && attempt == 0 {
			*made = ""
			continue // made meanwhile by another create: take that one
		}
		if err != nil {
			return deploy.Node{}, err
		}
		if err := b.start(ctx, id, s.Keys); err != nil {
			return deploy.Node{}, err
		}
		return n, b.waitReady(ctx, n, id, b.exited(ctx, id))
	}
}

// make creates (does not start) the node's container; made receives its
// node ID before the engine is asked.
func (b *Backend) make(ctx context.Context, s deploy.NodeSpec, name string, made *string) (deploy.Node, string, error) {
	image := s.Image
	if image == "" {
		var err error
		if image, err = b.NodeImage(ctx); err != nil {
			return deploy.Node{}, "", err
		}
	}
	netName, subnet, err := b.ensureNetwork(ctx)
	if err != nil {
		return deploy.Node{}, "", err
	}
	ip, err := nodeIP(subnet, s.Index)
	if err != nil {
		return deploy.Node{}, "", err
	}
	id := deploy.NewNodeID(Name, s.Index)
	*made = id
	created := time.Now().UTC().Format(time.RFC3339Nano)
	labels := map[string]string{
		LabelCluster: b.o.Cluster, LabelIndex: strconv.Itoa(s.Index), LabelNodeID: id, LabelRole: "node",
		LabelAddress: ip.String(), LabelImage: s.Image, LabelCreated: created,
	}
	for k, v := range b.o.Labels {
		labels[k] = v
	}
	env := []string{"LANG=C.UTF-8", NetworkEnv + "=" + netName}
	if l := os.Getenv(dockerengine.LabelsEnv); l != "" {
		env = append(env, dockerengine.LabelsEnv+"="+l)
	}
	hc := &container.HostConfig{}
	if b.o.DockerSocket != "" {
		hc.Binds = []string{b.o.DockerSocket + ":" + DockerSocket}
	}
	// Not cut short by ctx: the engine may make the container all the
	// same, after this call gave up on it, where no undo would see it.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	resp, err := b.cli.ContainerCreate(cctx, &container.Config{
		Hostname: name,
		Image:    image,
		Cmd: append(agentSubcommand(b.o.Binary), "--dir", NodeDir,
			"--listen", net.JoinHostPort(ip.String(), strconv.Itoa(b.o.AgentPort)),
			"--index", strconv.Itoa(s.Index), "--node-id", id),
		Env:    env,
		Labels: labels,
	}, hc, &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		netName: {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: ip.String()}},
	}}, nil, name)
	if err != nil {
		return deploy.Node{}, "", fmt.Errorf("create container from image %s: %w", image, err)
	}
	n, err := b.nodeOf(labels)
	return n, resp.ID, err
}

// start writes the authorized keys into the container and starts it.
func (b *Backend) start(ctx context.Context, id, keys string) error {
	var buf bytes.Buffer
	if err := tarFile(&buf, strings.TrimPrefix(NodeDir, "/")+"/authorized_keys", []byte(keys), 0o600); err != nil {
		return err
	}
	if err := b.cli.CopyToContainer(ctx, id, "/", &buf, container.CopyToContainerOptions{}); err != nil {
		return fmt.Errorf("write authorized_keys: %w", err)
	}
	if err := b.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return fmt.Errorf("start container: %w", err)
	}
	return nil
}

// exited returns a channel that receives once the container stops running.
func (b *Backend) exited(ctx context.Context, id string) <-chan error {
	out := make(chan error, 1)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.o.StartTimeout+5*time.Second)
	res, errc := b.cli.ContainerWait(wctx, id, container.WaitConditionNotRunning)
	go func() {
		defer cancel()
		select {
		case r := <-res:
			out <- fmt.Errorf("exit status %d", r.StatusCode)
		case err := <-errc:
			if wctx.Err() == nil {
				out <- fmt.Errorf("wait: %w", err)
			}
		}
	}()
	return out
}

// agentSubcommand is what runs the agent after the image's entrypoint (the
// Binary): nothing for dflow-agent, "agent" for dflow.
func agentSubcommand(binary string) []string {
	if filepath.Base(binary) == "dflow-agent" {
		return nil
	}
	return []string{"agent"}
}

// waitReady returns once the node's agent answers an authenticated status
// call with the node's ID.
func (b *Backend) waitReady(ctx context.Context, n deploy.Node, id string, exited <-chan error) error {
	return api.WaitReady(ctx, n.AgentURL, b.o.Signer, n.ID, b.o.StartTimeout, exited, api.AgentLog{
		Where: "its log (docker logs " + b.ContainerName(n.Index) + ")", Tail: func(k int) string { return b.logTail(id, k) },
	})
}

// logTail is the last n lines the container wrote.
func (b *Backend) logTail(id string, n int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := b.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n)})
	if err != nil {
		return "(" + err.Error() + ")"
	}
	defer rc.Close()
	var out bytes.Buffer
	_, _ = stdcopy.StdCopy(&out, &out, io.LimitReader(rc, 1<<20))
	return strings.TrimRight(out.String(), "\n")
}

// Destroy stops the node's container (its agent stops the versions it
// runs), removes it and whatever app containers its agent left. A container
// holding another incarnation (n.ID set and different) is left alone.
func (b *Backend) Destroy(ctx context.Context, n deploy.Node) error {
	name := b.ContainerName(n.Index)
	c, err := b.cli.ContainerInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("destroy node %d: inspect %s: %w", n.Index, name, err)
	}
	cur := c.Config.Labels[LabelNodeID]
	if n.ID != "" && cur != n.ID {
		return nil
	}
	if c.State != nil && c.State.Running {
		grace := 12 // the agent gives its apps up to 10s
		_ = b.cli.ContainerStop(ctx, c.ID, container.StopOptions{Timeout: &grace})
	}
	if err := b.remove(ctx, c.ID); err != nil {
		return fmt.Errorf("destroy node %d: %w", n.Index, err)
	}
	if cur != "" {
		apps, err := b.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelNodeID+"="+cur))})
		if err != nil {
			return fmt.Errorf("destroy node %d: list its app containers: %w", n.Index, err)
		}
		for _, a := range apps {
			if err := b.remove(ctx, a.ID); err != nil {
				return fmt.Errorf("destroy node %d: %w", n.Index, err)
			}
		}
	}
	b.removeNetworkIfUnused(ctx)
	return nil
}

// removeNetworkIfUnused removes the cluster's network once no container of
// the cluster is left (best effort: the engine refuses to remove a network
// in use, and the next Create makes it again).
func (b *Backend) removeNetworkIfUnused(ctx context.Context) {
	networkMu.Lock()
	defer networkMu.Unlock()
	cs, err := b.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelCluster+"="+b.o.Cluster))})
	if err != nil || len(cs) > 0 {
		return
	}
	_ = b.cli.NetworkRemove(ctx, b.NetworkName())
}

func (b *Backend) remove(ctx context.Context, id string) error {
	err := b.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %.12s: %w", id, err)
	}
	return nil
}

// List reports the nodes whose container runs now (the agent is the
// container's process: a container that runs has a live agent).
func (b *Backend) List(ctx context.Context) ([]deploy.Node, error) {
	cs, err := b.cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", LabelCluster+"="+b.o.Cluster), filters.Arg("label", LabelRole+"=node"),
		filters.Arg("status", "running"))})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var nodes []deploy.Node
	for _, c := range cs {
		n, err := b.nodeOf(c.Labels)
		if err != nil {
			return nil, fmt.Errorf("list nodes: container %s: %w", strings.Join(c.Names, ","), err)
		}
		nodes = append(nodes, n)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Index < nodes[j].Index })
	return nodes, nil
}

// Remains reports the indices that have a node container, running or not.
func (b *Backend) Remains(ctx context.Context) ([]int, error) {
	cs, err := b.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", LabelCluster+"="+b.o.Cluster), filters.Arg("label", LabelRole+"=node"))})
	if err != nil {
		return nil, fmt.Errorf("list node containers: %w", err)
	}
	out := []int{}
	for _, c := range cs {
		if i, err := strconv.Atoi(c.Labels[LabelIndex]); err == nil && i >= 0 {
			out = append(out, i)
		}
	}
	sort.Ints(out)
	return out, nil
}

// nodeOf reads a node back from its container's labels.
func (b *Backend) nodeOf(labels map[string]string) (deploy.Node, error) {
	if labels[LabelCluster] != b.o.Cluster || labels[LabelRole] != "node" {
		return deploy.Node{}, fmt.Errorf("the container is not a node of cluster %s (labels %s=%q, %s=%q)", b.o.Cluster, LabelCluster, labels[LabelCluster], LabelRole, labels[LabelRole])
	}
	index, err := strconv.Atoi(labels[LabelIndex])
	if err != nil {
		return deploy.Node{}, fmt.Errorf("label %s=%q: %w", LabelIndex, labels[LabelIndex], err)
	}
	created, err := time.Parse(time.RFC3339Nano, labels[LabelCreated])
	if err != nil {
		return deploy.Node{}, fmt.Errorf("label %s=%q: %w", LabelCreated, labels[LabelCreated], err)
	}
	addr := labels[LabelAddress]
	if net.ParseIP(addr) == nil {
		return deploy.Node{}, fmt.Errorf("label %s=%q is no IP address", LabelAddress, addr)
	}
	return deploy.Node{
		Index:     index,
		ID:        labels[LabelNodeID],
		Address:   addr,
		AgentURL:  "http://" + net.JoinHostPort(addr, strconv.Itoa(b.o.AgentPort)),
		Backend:   Name,
		Image:     labels[LabelImage],
		CreatedAt: created.UTC(),
	}, nil
}

// nodeIP is the address of node index in subnet: .2 is node 0 (.1 is the
// gateway).
func nodeIP(subnet *net.IPNet, index int) (net.IP, error) {
	base := subnet.IP.To4()
	ones, bits := subnet.Mask.Size()
	if base == nil || bits != 32 {
		return nil, fmt.Errorf("network subnet %s is not IPv4", subnet)
	}
	size := uint64(1) << (bits - ones)
	off := uint64(index) + 2
	if off >= size-1 {
		return nil, fmt.Errorf("node %d does not fit in subnet %s", index, subnet)
	}
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, binary.BigEndian.Uint32(base)+uint32(off))
	return ip, nil
}

var networkMu sync.Mutex

// ensureNetwork returns the cluster's network and its subnet, creating it
// on a free /16 when it is missing (the first create, or after the last
// node was destroyed).
func (b *Backend) ensureNetwork(ctx context.Context) (string, *net.IPNet, error) {
	networkMu.Lock()
	defer networkMu.Unlock()
	name := b.NetworkName()
	for attempt := 0; attempt < 20; attempt++ {
		nw, err := b.cli.NetworkInspect(ctx, name, network.InspectOptions{})
		if err == nil {
			for _, c := range nw.IPAM.Config {
				if _, subnet, err := net.ParseCIDR(c.Subnet); err == nil && subnet.IP.To4() != nil {
					return name, subnet, nil
				}
			}
			return "", nil, fmt.Errorf("network %s has no IPv4 subnet", name)
		}
		if !cerrdefs.IsNotFound(err) {
			return "", nil, fmt.Errorf("inspect network %s: %w", name, err)
		}
		subnet, err := b.freeSubnet(ctx)
		if err != nil {
			return "", nil, err
		}
		gw, _ := nodeIP(subnet, -1)
		labels := map[string]string{LabelCluster: b.o.Cluster}
		for k, v := range b.o.Labels {
			labels[k] = v
		}
		nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second) // not cut short: see make
		_, err = b.cli.NetworkCreate(nctx, name, network.CreateOptions{
			Driver: "bridge",
			IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet.String(), Gateway: gw.String()}}},
			Labels: labels,
		})
		cancel()
		if err != nil && !cerrdefs.IsConflict(err) && !strings.Contains(err.Error(), "overlaps") && !strings.Contains(err.Error(), "already exists") {
			return "", nil, fmt.Errorf("create network %s on %s: %w", name, subnet, err)
		}
		// Made (by us or by a concurrent create), or the subnet was taken
		// meanwhile: look again.
	}
	return "", nil, fmt.Errorf("create network %s: no free subnet after 20 tries", name)
}

// freeSubnet picks a /16 in 10.128.0.0/9 that no Docker network and no
// address of this host uses.
func (b *Backend) freeSubnet(ctx context.Context) (*net.IPNet, error) {
	var used []*net.IPNet
	nws, err := b.cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	for _, nw := range nws {
		for _, c := range nw.IPAM.Config {
			if _, s, err := net.ParseCIDR(c.Subnet); err == nil {
				used = append(used, s)
			}
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				used = append(used, ipn)
			}
		}
	}
	for second := 200; second < 256; second++ {
		_, cand, _ := net.ParseCIDR(fmt.Sprintf("10.%d.0.0/16", second))
		free := true
		for _, u := range used {
			if u.Contains(cand.IP) || cand.Contains(u.IP) {
				free = false
			}
		}
		if free {
			return cand, nil
		}
	}
	return nil, errors.New("no free /16 left in 10.200.0.0-10.255.0.0 for the cluster network")
}
