package docker

import (
	"context"

	"github.com/distributive-flow/dflow/backends/internal/dockerengine"
	"github.com/distributive-flow/dflow/backends/internal/dockerimage"
	"github.com/docker/docker/client"
)

// The image building this backend uses lives in backends/internal, which
// only backends can import; these names give it to the agent's and the
// end-to-end tests, which build app images and label what they make.

// LabelsEnv names the environment variable whose k=v[,k=v] pairs are added
// to every image, network and container dflow's Docker backends make.
const LabelsEnv = dockerengine.LabelsEnv

// Rootfs is the file tree of an image built FROM scratch.
type Rootfs = dockerimage.Rootfs

// ImageSpec is how to build an image from a Rootfs.
type ImageSpec = dockerimage.ImageSpec

// BuildImage imports r as an image FROM scratch, tagged s.Tag.
func BuildImage(ctx context.Context, cli client.APIClient, r *Rootfs, s ImageSpec) error {
	return dockerimage.BuildImage(ctx, cli, r, s)
}
