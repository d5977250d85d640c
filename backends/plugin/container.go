package plugin

import (
	"context"
	"os"
	"path/filepath"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
)

// Container adapts the plugin to a ContainerBackend (verbs
// container.containerize, container.start, container.stop).
func (p *Plugin) Container() backends.ContainerBackend { return containerPlugin{p} }

type containerPlugin struct{ p *Plugin }

var _ backends.ContainerBackend = containerPlugin{}

// ContainerizeRequest is the request of container.containerize.
type ContainerizeRequest struct {
	Target deploy.Target `json:"target"`
	// BundlePath is the Target's bundle in the control plane's artifact
	// store ($DFLOW_STATE_DIR/artifacts/<digest>), when it is on this
	// machine; "" otherwise.
	BundlePath string `json:"bundle_path,omitempty"`
}

// StartRequest is the request of container.start.
type StartRequest struct {
	Container backends.Container    `json:"container"`
	Node      deploy.Node           `json:"node"`
	Options   backends.StartOptions `json:"options"`
}

// StopRequest is the request of container.stop.
type StopRequest struct {
	Process backends.Process     `json:"process"`
	Options backends.StopOptions `json:"options"`
}

func (c containerPlugin) Containerize(ctx context.Context, t deploy.Target) (backends.Container, error) {
	req := ContainerizeRequest{Target: t}
	if c.p.env.StateDir != "" && filepath.Base(t.Digest) == t.Digest && t.Digest != "" {
		path := filepath.Join(c.p.env.StateDir, "artifacts", t.Digest)
		if _, err := os.Stat(path); err == nil {
			req.BundlePath = path
		}
	}
	var out backends.Container
	if err := c.p.call(ctx, "container.containerize", req, &out, nil); err != nil {
		return backends.Container{}, err
	}
	if out.Digest != t.Digest {
		return backends.Container{}, c.p.badResult("container.containerize", "asked for the target of digest %s, answered digest %q", t.Digest, out.Digest)
	}
	return out, nil
}

func (c containerPlugin) Start(ctx context.Context, ct backends.Container, n deploy.Node, o backends.StartOptions) (backends.Process, error) {
	var out backends.Process
	if err := c.p.call(ctx, "container.start", StartRequest{Container: ct, Node: n, Options: o}, &out, nil); err != nil {
		return backends.Process{}, err
	}
	if out.ID != o.ID {
		return backends.Process{}, c.p.badResult("container.start", "asked to start %s, answered process %q", o.ID, out.ID)
	}
	if out.Node.ID == "" {
		out.Node = n
	}
	return out, nil
}

func (c containerPlugin) Stop(ctx context.Context, pr backends.Process, o backends.StopOptions) error {
	return c.p.call(ctx, "container.stop", StopRequest{Process: pr, Options: o}, nil, nil)
}
