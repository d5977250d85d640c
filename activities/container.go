package activities

import (
	"context"
	"fmt"
	"path/filepath"

	dockercontainer "github.com/distributive-flow/dflow/backends/container/docker"
	"github.com/distributive-flow/dflow/deploy"
	"go.temporal.io/sdk/temporal"
)

// This file is the container backend's side of a rollout: with
// backends.container: docker, each release runs on the nodes as a container
// of an image made from its Target (backends/container/docker), on the
// Docker engine the worker and the nodes share.

// ContainerImage says what Containerize made.
type ContainerImage = dockercontainer.Image

// Containerize makes the image release target t runs from when cfg selects
// the docker container backend, and returns it (a zero ContainerImage with
// the process backend). It is idempotent: an image that exists is not
// rebuilt. Run it in the worker before the rollout, so the first node does
// not wait for the build; StartOnNode makes the image itself when it is
// missing.
func (a *Activities) Containerize(ctx context.Context, ref deploy.ConfigRef, t deploy.Target) (ContainerImage, error) {
	cfg, b, err := a.resolve(ctx, ref)
	if err != nil {
		return ContainerImage{}, err
	}
	if cfg.Backends.Container != dockercontainer.Name {
		return ContainerImage{}, nil
	}
	var img ContainerImage
	err = heartbeating(ctx, "containerizing "+deploy.ShortVersion(t.Version), func(ctx context.Context) (err error) {
		img, err = containerize(ctx, cfg, b, t)
		return err
	})
	return img, err
}

// containerize makes (or finds) t's image with the docker container backend.
func containerize(ctx context.Context, cfg deploy.Config, b *Backends, t deploy.Target) (ContainerImage, error) {
	be, err := dockercontainer.New(dockercontainer.Options{Artifacts: b.Artifacts, WorkDir: filepath.Join(cfg.StateDir(), "build")})
	if err != nil {
		return ContainerImage{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrBadInput, nil)
	}
	img, err := be.Containerize(ctx, t)
	if err != nil {
		return ContainerImage{}, fmt.Errorf("container backend %s: %w", dockercontainer.Name, err)
	}
	return img, nil
}

// StartImage is the image StartOnNode asks a node to run release r from:
// "" with the process backend (the agent runs the bundle's executable).
func StartImage(ctx context.Context, cfg deploy.Config, b *Backends, r deploy.Release) (string, error) {
	if cfg.Backends.Container != dockercontainer.Name {
		return "", nil
	}
	img, err := containerize(ctx, cfg, b, r.Target)
	if err != nil {
		return "", fmt.Errorf("release %d (%s): %w", r.ID, deploy.ShortVersion(r.Version), err)
	}
	return img.Ref, nil
}
