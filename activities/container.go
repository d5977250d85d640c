package activities

import (
	"context"
	"fmt"

	"github.com/distributive-flow/dflow/deploy"
)

// This file is the container backend's side of a rollout: the backend the
// configuration names (backends.container: process, docker, or a plugin;
// Backends.Container) makes what the nodes run each release from, and
// StartOnNode asks the node's agent to run that.

// StartImage is the image StartOnNode asks a node to run release r from:
// what the container backend's Containerize made of r's Target, or "" when
// the nodes run the bundle's executable (the process backend). Containerize
// is idempotent: an image made before is found, not made again.
func StartImage(ctx context.Context, cfg deploy.Config, b *Backends, r deploy.Release) (string, error) {
	if b.Container == nil {
		return "", nil
	}
	c, err := b.Container.Containerize(ctx, r.Target)
	if err != nil {
		return "", fmt.Errorf("release %d (%s): container backend %s: %w", r.ID, deploy.ShortVersion(r.Version), cfg.Backends.Container, err)
	}
	return c.Image, nil
}
