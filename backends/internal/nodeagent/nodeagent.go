package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
	"golang.org/x/crypto/ssh"
)

// Start asks node n's agent to run c as process o.ID and waits for its
// readiness gate (backends.ContainerBackend.Start's contract). signer
// signs the requests; the agent must hold c.Digest.
func Start(ctx context.Context, signer ssh.Signer, c backends.Container, n deploy.Node, o backends.StartOptions) (backends.Process, error) {
	if signer == nil {
		return backends.Process{}, fmt.Errorf("start %s on node %d: no key to sign requests to its agent", o.ID, n.Index)
	}
	req := api.StartRequest{
		ID: o.ID, Version: c.Version, Digest: c.Digest, Exec: o.Exec, Args: o.Args, Env: o.Env,
		Mode: o.Mode, HealthPath: o.HealthPath, ReadyProbes: o.ReadyProbes, ReadyTimeout: o.ReadyTimeout,
		Image: c.Image, PublicPort: o.PublicPort,
	}
	info, err := api.NewClient(n.AgentURL, n.ID, signer).StartProcess(ctx, req)
	var gate *api.GateError
	if errors.As(err, &gate) {
		return backends.Process{}, fmt.Errorf("start %s on node %d: %w", o.ID, n.Index, &NotReadyError{Gate: gate})
	}
	if err != nil {
		return backends.Process{}, fmt.Errorf("start %s on node %d: %w", o.ID, n.Index, err)
	}
	return backends.Process{
		ID: info.ID, Node: n, Version: info.Version, Digest: info.Digest,
		Port: info.Port, PID: info.PID, Log: info.Log, ListenWarning: info.ListenWarning, StartedAt: info.StartedAt,
	}, nil
}

// Stop asks p's node's agent to stop p (draining it first unless o.Now)
// and waits until it is gone. A process the agent does not know is gone
// already: no error.
func Stop(ctx context.Context, signer ssh.Signer, p backends.Process, o backends.StopOptions) error {
	if signer == nil {
		return fmt.Errorf("stop %s on node %d: no key to sign requests to its agent", p.ID, p.Node.Index)
	}
	_, err := api.NewClient(p.Node.AgentURL, p.Node.ID, signer).StopProcess(ctx, p.ID, api.StopRequest{
		Now: o.Now, DrainTimeout: o.DrainTimeout, Grace: o.Grace,
	})
	var ae *api.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop %s on node %d: %w", p.ID, p.Node.Index, err)
	}
	return nil
}

// NotReadyError is a start that failed its readiness gate: it wraps
// backends.ErrNotReady and the agent's *api.GateError (the probe, the
// reason, the last lines of the version's log).
type NotReadyError struct {
	Gate *api.GateError
}

func (e *NotReadyError) Error() string { return e.Gate.Error() }

// Unwrap gives backends.ErrNotReady and the agent's GateError.
func (e *NotReadyError) Unwrap() []error { return []error{backends.ErrNotReady, e.Gate} }
