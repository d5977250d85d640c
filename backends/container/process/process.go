package process

import (
	"context"
	"errors"
	"fmt"

	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/internal/nodeagent"
	"github.com/distributive-flow/dflow/deploy"
	"golang.org/x/crypto/ssh"
)

// Name is the backend's name in dflow.yaml (backends.container) and
// --container-backend.
const Name = "process"

// Options configure the backend.
type Options struct {
	// Signer signs requests to the node agents; required.
	Signer ssh.Signer
}

// Backend runs versions as processes of their bundles.
type Backend struct {
	o Options
}

var _ backends.ContainerBackend = (*Backend)(nil)

// New returns the backend.
func New(o Options) (*Backend, error) {
	if o.Signer == nil {
		return nil, errors.New("process container backend: Signer is required")
	}
	return &Backend{o: o}, nil
}

// Containerize checks that t can run as a process (it has an executable
// and a bundle digest) and returns the Container naming its bundle. It
// makes nothing: Built is always false.
func (b *Backend) Containerize(ctx context.Context, t deploy.Target) (backends.Container, error) {
	if _, ok := t.Executable(""); !ok {
		return backends.Container{}, fmt.Errorf("containerize %s (version %s): the target has no executable", t.Package, deploy.ShortVersion(t.Version))
	}
	if !artifact.ValidDigest(t.Digest) {
		return backends.Container{}, fmt.Errorf("containerize %s (version %s): digest %q is not a sha256", t.Package, deploy.ShortVersion(t.Version), t.Digest)
	}
	return backends.Container{Package: t.Package, Version: t.Version, Digest: t.Digest}, nil
}

// Start has node n's agent run the bundle's executable o.Exec as process
// o.ID and waits for its readiness gate.
func (b *Backend) Start(ctx context.Context, c backends.Container, n deploy.Node, o backends.StartOptions) (backends.Process, error) {
	if c.Image != "" {
		return backends.Process{}, fmt.Errorf("start %s on node %d: container %s is an image, made by another container backend than %s", o.ID, n.Index, c.Image, Name)
	}
	return nodeagent.Start(ctx, b.o.Signer, c, n, o)
}

// Stop has p's node's agent stop it; a process that is gone is no error.
func (b *Backend) Stop(ctx context.Context, p backends.Process, o backends.StopOptions) error {
	return nodeagent.Stop(ctx, b.o.Signer, p, o)
}
