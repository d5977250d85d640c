package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/agent/process"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// This file runs versions as Docker containers (StartRequest.Image): the
// docker container backend's side on the node. The container goes through
// the same gate, switch, drain and stop as a process; only how it starts
// and stops differs.
//
// The container joins the Docker network $DFLOW_DOCKER_NETWORK (a docker
// VM node's own network; default "bridge") and the proxy reaches it at its
// address there, so no port is published and containers never clash over
// ports. That needs the agent to reach container addresses: true on Linux
// for an agent on the host and for one in a container on the same network.
//
// Where a container listens: inside its own network namespace, loopback is
// the container's, not the host's, and the proxy reaches it at its address
// on the Docker network. So a container gets HOST=0.0.0.0 (not 127.0.0.1,
// which would make it unreachable to the proxy and fail its gate). Since
// no port is published (-p), nothing is mapped onto the host's interfaces:
// the container's port is reachable only on the Docker network's address
// (from the host and from the other containers on that network, not from
// other machines unless they route to that network). Publishing the port
// on 127.0.0.1 of the host would add a second way in, not close one, so the
// agent does not. The agent does not check where a container listens
// (ProcessInfo.ListenWarning stays empty): its sockets are in another
// network namespace, and listening on the container's address is the point.

// appProc is a running version: a *process.Proc or a *dockerApp.
type appProc interface {
	process.Exiter
	PID() int
	// Stop ends it: SIGTERM, grace, SIGKILL; safe twice and after it exited.
	Stop(grace time.Duration) error
}

var (
	_ appProc = (*process.Proc)(nil)
	_ appProc = (*dockerApp)(nil)
)

// Labels of the containers the agent runs.
const (
	labelRole     = "dflow.role" // "app"
	labelNodeID   = "dflow.node-id"
	labelIndex    = "dflow.index"
	labelInstance = "dflow.instance"
	labelVersion  = "dflow.version"
)

// imageAppDir is where an app image holds the bundle's executables
// (backends/container/docker.AppDir).
const imageAppDir = "/app"

// containerHost is the HOST a container version listens on: every address
// of its own network namespace (see above).
const containerHost = "0.0.0.0"

// dockerEngine is the agent's connection to the Docker engine, made on
// first use.
type dockerEngine struct {
	once  sync.Once
	cli   *client.Client
	err   error
	swept bool
}

// client connects on first use and then removes the app containers a
// previous life of this node's agent left behind.
func (a *Agent) dockerClient(ctx context.Context) (*client.Client, error) {
	d := &a.rt.docker
	d.once.Do(func() {
		d.cli, d.err = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if d.err != nil {
			return
		}
		if _, err := d.cli.Ping(ctx); err != nil {
			d.err = fmt.Errorf("reach the Docker engine (%s): %w", d.cli.DaemonHost(), err)
			return
		}
		a.sweepContainers(ctx, d.cli)
	})
	return d.cli, d.err
}

// sweepContainers removes app containers of this node that no instance of
// this agent owns: a killed agent cannot stop its containers.
func (a *Agent) sweepContainers(ctx context.Context, cli *client.Client) {
	if a.o.NodeID == "" {
		return
	}
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", labelRole+"=app"), filters.Arg("label", labelNodeID+"="+a.o.NodeID))})
	if err != nil {
		a.o.Log.Printf("agent: list leftover app containers: %v", err)
		return
	}
	a.rt.mu.Lock()
	owned := map[string]bool{}
	for _, in := range a.rt.procs {
		if d, ok := in.proc.(*dockerApp); ok {
			owned[d.id] = true
		}
	}
	a.rt.mu.Unlock()
	for _, c := range cs {
		if owned[c.ID] {
			continue
		}
		a.o.Log.Printf("agent: removing app container %.12s (%s) left by an earlier agent", c.ID, c.Labels[labelInstance])
		_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	}
}

// dockerLabels are the k=v pairs of $DFLOW_DOCKER_LABELS.
func dockerLabels() map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(os.Getenv("DFLOW_DOCKER_LABELS"), ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && k != "" {
			out[k] = v
		}
	}
	return out
}

// startContainer creates and starts r as a container of r.Image, its
// output appended to logPath.
func (a *Agent) startContainer(ctx context.Context, r api.StartRequest, logPath string) (*dockerApp, *api.GateError, *httpError) {
	fail := func(err error) (*dockerApp, *api.GateError, *httpError) {
		return nil, &api.GateError{ID: r.ID, Reason: err.Error(), LogTail: process.Tail(logPath, logTailLines)}, nil
	}
	cli, err := a.dockerClient(ctx)
	if err != nil {
		return nil, nil, errStatus(http.StatusInternalServerError, "start process %s as a container: %w", r.ID, err)
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, nil, errStatus(http.StatusInternalServerError, "start process %s: %w", r.ID, err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, errStatus(http.StatusInternalServerError, "start process %s: open log: %w", r.ID, err)
	}
	port, err := a.freePort(r.PublicPort)
	if err != nil {
		logf.Close()
		return nil, nil, errStatus(http.StatusInternalServerError, "start process %s: %w", r.ID, err)
	}
	netName := os.Getenv("DFLOW_DOCKER_NETWORK")
	if netName == "" {
		netName = "bridge"
	}
	labels := dockerLabels()
	for k, v := range map[string]string{
		labelRole: "app", labelNodeID: a.o.NodeID, labelIndex: strconv.Itoa(a.o.Index),
		labelInstance: r.ID, labelVersion: r.Version,
	} {
		labels[k] = v
	}
	env := append([]string{"LANG=C.UTF-8"}, a.appEnv(r, containerHost, port)...)
	created, err := cli.ContainerCreate(ctx, &container.Config{
		Image:      r.Image,
		Entrypoint: []string{path.Join(imageAppDir, r.Exec)},
		Cmd:        r.Args,
		Env:        env,
		Labels:     labels,
	}, &container.HostConfig{NetworkMode: container.NetworkMode(netName)}, nil, nil, "")
	if err != nil {
		logf.Close()
		return fail(fmt.Errorf("create container from image %s: %w", r.Image, err))
	}
	d := &dockerApp{cli: cli, id: created.ID, instance: r.ID, port: port, exited: make(chan struct{}), logDone: make(chan struct{})}
	if err := cli.ContainerStart(ctx, d.id, container.StartOptions{}); err != nil {
		logf.Close()
		_ = cli.ContainerRemove(context.WithoutCancel(ctx), d.id, container.RemoveOptions{Force: true})
		return fail(fmt.Errorf("start container %.12s of image %s: %w", d.id, r.Image, err))
	}
	// Logs and exit are followed for the container's whole life, not for
	// this request's.
	go d.copyLogs(logf)
	go d.wait()
	c, err := cli.ContainerInspect(ctx, d.id)
	if err != nil {
		_ = d.Stop(0)
		return fail(fmt.Errorf("inspect container %.12s: %w", d.id, err))
	}
	if c.State != nil {
		d.pid = c.State.Pid
	}
	var ip string
	if c.NetworkSettings != nil {
		if ep := c.NetworkSettings.Networks[netName]; ep != nil {
			ip = ep.IPAddress
		}
	}
	exitedAlready := c.State != nil && !c.State.Running
	if ip == "" && !exitedAlready {
		_ = d.Stop(0)
		return fail(fmt.Errorf("container %.12s has no address on network %s", d.id, netName))
	}
	d.addr = net.JoinHostPort(ip, strconv.Itoa(port))
	return d, nil, nil
}

// dockerApp is a version running as a container.
type dockerApp struct {
	cli      *client.Client
	id       string
	instance string
	addr     string // ip:port on the container's network
	port     int
	pid      int // on the engine's host

	exited  chan struct{}
	err     error // set before exited is closed
	logDone chan struct{}
}

func (d *dockerApp) String() string { return fmt.Sprintf("%s (container %.12s)", d.instance, d.id) }

// PID is the container's main process id on the engine's host.
func (d *dockerApp) PID() int { return d.pid }

// Exited is closed once the container stopped running.
func (d *dockerApp) Exited() <-chan struct{} { return d.exited }

// ExitErr is the exit status once Exited is closed: nil for 0.
func (d *dockerApp) ExitErr() error {
	select {
	case <-d.exited:
		return d.err
	default:
		return nil
	}
}

// copyLogs appends the container's output to logf until it stops.
func (d *dockerApp) copyLogs(logf *os.File) {
	defer close(d.logDone)
	defer logf.Close()
	rc, err := d.cli.ContainerLogs(context.Background(), d.id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		fmt.Fprintf(logf, "dflow agent: cannot follow the container's output: %v\n", err)
		return
	}
	defer rc.Close()
	_, _ = stdcopy.StdCopy(logf, logf, rc)
}

// wait closes exited when the container stops running (or is gone).
func (d *dockerApp) wait() {
	defer close(d.exited)
	for {
		res, errc := d.cli.ContainerWait(context.Background(), d.id, container.WaitConditionNotRunning)
		select {
		case r := <-res:
			if r.Error != nil && r.Error.Message != "" {
				d.err = fmt.Errorf("container wait: %s", r.Error.Message)
			} else if r.StatusCode != 0 {
				d.err = fmt.Errorf("exit status %d", r.StatusCode)
				if r.StatusCode > 128 {
					d.err = fmt.Errorf("exit status %d (signal %d)", r.StatusCode, r.StatusCode-128)
				}
			}
			return
		case err := <-errc:
			if cerrdefs.IsNotFound(err) {
				d.err = fmt.Errorf("container %.12s is gone", d.id)
				return
			}
			time.Sleep(time.Second) // the engine restarts, say: wait again
		}
	}
}

// Stop stops the container (docker stop: SIGTERM, grace, SIGKILL), waits
// for its output to be copied and removes it.
func (d *dockerApp) Stop(grace time.Duration) error {
	ctx := context.Background()
	select {
	case <-d.exited:
	default:
		secs := int((grace + time.Second - 1) / time.Second)
		if err := d.cli.ContainerStop(ctx, d.id, container.StopOptions{Timeout: &secs}); err != nil && !cerrdefs.IsNotFound(err) {
			// Kill it, then.
			if kerr := d.cli.ContainerKill(ctx, d.id, "SIGKILL"); kerr != nil && !cerrdefs.IsNotFound(kerr) {
				return fmt.Errorf("stop container %.12s (%s): %w; kill: %w", d.id, d.instance, err, kerr)
			}
		}
		select {
		case <-d.exited:
		case <-time.After(grace + 10*time.Second):
			return fmt.Errorf("stop container %.12s (%s): still running %s after SIGKILL", d.id, d.instance, grace+10*time.Second)
		}
	}
	select {
	case <-d.logDone:
	case <-time.After(2 * time.Second):
	}
	if err := d.cli.ContainerRemove(ctx, d.id, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) && !strings.Contains(err.Error(), "already in progress") {
		return fmt.Errorf("remove container %.12s (%s): %w", d.id, d.instance, err)
	}
	return nil
}
