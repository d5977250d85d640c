package activities

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"

	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/temporal"
)

// This file is the container backend's side of a rollout: the backend the
// configuration names (backends.container: process, docker, or a plugin;
// Backends.Container) makes what the nodes run each release from, and
// starts and stops its versions on the nodes.

// StartOnNode starts release r beside whatever runs on node n and waits for
// its readiness gate, with the container backend: what it made of r's
// Target (Containerize is idempotent: made once, found after) runs as
// process r.InstanceID(). A version that fails the gate is killed (the old
// one keeps serving) and the error, with the probe and the last lines of
// the new version's log, is not retried.
func (a *Activities) StartOnNode(ctx context.Context, ref deploy.ConfigRef, n deploy.Node, r deploy.Release) (backends.Process, error) {
	cfg, b, err := a.resolve(ctx, ref)
	if err != nil {
		return backends.Process{}, err
	}
	ctr, err := b.containers()
	if err != nil {
		return backends.Process{}, err
	}
	env, err := appEnv(cfg)
	if err != nil {
		return backends.Process{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrBadInput, nil)
	}
	o, err := startOptions(cfg, r, env)
	if err != nil {
		return backends.Process{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrBadInput, nil)
	}
	var p backends.Process
	err = heartbeating(ctx, "starting "+o.ID, func(ctx context.Context) error {
		c, err := ctr.Containerize(ctx, r.Target)
		if err != nil {
			return fmt.Errorf("start %s on node %d: release %d (%s): container backend %s: %w", o.ID, n.Index, r.ID, deploy.ShortVersion(r.Version), cfg.Backends.Container, err)
		}
		p, err = ctr.Start(ctx, c, n, o)
		return err
	})
	if errors.Is(err, backends.ErrNotReady) {
		// The agent's account (probe, reason, log) when there is one: the
		// backend's error adds the start and node this message names.
		why := err
		var gate *api.GateError
		if errors.As(err, &gate) {
			why = gate
		}
		return p, temporal.NewNonRetryableApplicationError(fmt.Sprintf("node %d (%s): version %s did not become ready: %v", n.Index, n.Address, deploy.ShortVersion(r.Version), why), ErrGateFailed, nil)
	}
	if err != nil {
		return p, permanent(err)
	}
	return p, nil
}

// StopOnNode stops process id on node n with the container backend: unless
// now, it first drains the requests in flight (bounded by
// app.drain_timeout), then SIGTERM, app.stop_grace, SIGKILL. A process that
// is gone already is no error.
func (a *Activities) StopOnNode(ctx context.Context, ref deploy.ConfigRef, n deploy.Node, id string, now bool) error {
	cfg, b, err := a.resolve(ctx, ref)
	if err != nil {
		return err
	}
	ctr, err := b.containers()
	if err != nil {
		return err
	}
	o := backends.StopOptions{Now: now, DrainTimeout: cfg.App.DrainTimeout.D(), Grace: cfg.App.StopGrace.D()}
	err = heartbeating(ctx, "stopping "+id, func(ctx context.Context) error {
		return ctr.Stop(ctx, backends.Process{ID: id, Node: n}, o)
	})
	if err != nil {
		return permanent(err)
	}
	return nil
}

// containers is the container backend of b, which every configuration
// names (backends.container).
func (b *Backends) containers() (backends.ContainerBackend, error) {
	if b.Container == nil {
		return nil, temporal.NewNonRetryableApplicationError("no container backend to start and stop versions with (Backends.Container is nil)", ErrBadInput, nil)
	}
	return b.Container, nil
}

// startOptions say how to run release r on a node, with env as the app's
// environment (see appEnv).
func startOptions(cfg deploy.Config, r deploy.Release, env map[string]string) (backends.StartOptions, error) {
	exe, ok := r.Target.Executable(cfg.App.Executable)
	if !ok {
		if cfg.App.Executable != "" {
			return backends.StartOptions{}, fmt.Errorf("%s: app.executable %q is not among the built executables", cfg.Where("app.executable"), cfg.App.Executable)
		}
		return backends.StartOptions{}, fmt.Errorf("release %d (%s) has no executable to run: add executable to target: in dflow.yaml", r.ID, deploy.ShortVersion(r.Version))
	}
	return backends.StartOptions{
		ID: r.InstanceID(), Exec: exe.Path, Args: cfg.App.Args, Env: env,
		Mode: cfg.App.ProxyMode(), HealthPath: cfg.App.Health, ReadyProbes: cfg.App.ReadyProbes, ReadyTimeout: cfg.App.ReadyTimeout.D(),
		PublicPort: cfg.App.Port,
	}, nil
}

// appEnv is the app's environment for cfg (a configuration revision read
// from the Store: app.env's values included): app.env, and app.secrets'
// values read here, on the worker, from the secrets file or the worker's
// environment.
func appEnv(cfg deploy.Config) (map[string]string, error) {
	env := make(map[string]string, len(cfg.App.Env)+len(cfg.App.Secrets))
	for _, kv := range cfg.App.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	secrets, err := cfg.Secrets(os.LookupEnv)
	if err != nil {
		return nil, err
	}
	maps.Copy(env, secrets)
	return env, nil
}
