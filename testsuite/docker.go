package testsuite

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
)

// DockerTestLabel is on everything tests make in Docker; DockerRunLabel
// (value: DockerRun()) tells one test binary's things from another's.
const (
	DockerTestLabel = "dflow.test"
	DockerRunLabel  = "dflow.test.run"
)

var dockerRun = fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)

// DockerRun is this test binary's run label value.
func DockerRun() string { return dockerRun }

// DockerLabels is the value of DFLOW_DOCKER_LABELS for this run: what the
// Docker backends add to everything they make.
func DockerLabels() string {
	return DockerTestLabel + "=1," + DockerRunLabel + "=" + dockerRun
}

// Docker returns a client of the local engine, or skips the test, loudly,
// when the engine is unreachable.
func Docker(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = c.Ping(ctx)
	}
	if err != nil {
		t.Skipf("SKIPPED: NO DOCKER ENGINE REACHABLE (%v): the Docker backends are NOT tested", err)
	}
	return c
}

// CleanDocker removes every container, network and image labelled with this
// run's label; call it at the end of TestMain (and from t.Cleanup).
func CleanDocker() {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", DockerRunLabel+"="+dockerRun))
	if cs, err := c.ContainerList(ctx, container.ListOptions{All: true, Filters: f}); err == nil {
		for _, x := range cs {
			_ = c.ContainerRemove(ctx, x.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		}
	}
	if ns, err := c.NetworkList(ctx, network.ListOptions{Filters: f}); err == nil {
		for _, x := range ns {
			_ = c.NetworkRemove(ctx, x.ID)
		}
	}
	if is, err := c.ImageList(ctx, image.ListOptions{All: true, Filters: f}); err == nil {
		for _, x := range is {
			_, _ = c.ImageRemove(ctx, x.ID, image.RemoveOptions{Force: true, PruneChildren: true})
		}
	}
}

// DflowBinary is a real dflow executable for Docker nodes: $DFLOW_BIN, or
// one built from ./cmd/dflow into a temp dir (returned for removal).
func DflowBinary() (bin string, tmp string, err error) {
	if b := os.Getenv("DFLOW_BIN"); b != "" {
		return b, "", nil
	}
	tmp, err = os.MkdirTemp("", "dflow-bin")
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(tmp, "dflow")
	root, err := moduleRoot()
	if err != nil {
		return "", tmp, err
	}
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/dflow")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", tmp, fmt.Errorf("build dflow: %v\n%s", err, out)
	}
	return bin, tmp, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
