package dockerengine

import (
	"fmt"
	"os"
	"strings"

	"github.com/docker/docker/client"
)

// LabelsEnv names the environment variable whose k=v[,k=v] pairs are added
// to every image, network and container dflow's Docker backends make (tests
// set dflow.test=1 and remove by it).
const LabelsEnv = "DFLOW_DOCKER_LABELS"

// ExtraLabels are the labels from $DFLOW_DOCKER_LABELS.
func ExtraLabels() map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(os.Getenv(LabelsEnv), ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && k != "" {
			out[k] = v
		}
	}
	return out
}

// Connect returns a client for the engine at $DOCKER_HOST (default the
// local socket), speaking the engine's API version.
func Connect() (*client.Client, error) {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return c, nil
}
