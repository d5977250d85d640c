package docker_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/agent/process/fakeapp"
	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/container/docker"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/docker/docker/api/types/container"
	"github.com/stretchr/testify/require"
)

// TestMain doubles as the app: the image holds this test binary, which
// serves as the fake app when started with DFLOW_FAKE_APP=1.
func TestMain(m *testing.M) {
	fakeapp.ServeIfAsked()
	os.Setenv(docker.LabelsEnv, testsuite.DockerLabels())
	code := m.Run()
	testsuite.CleanDocker()
	os.Exit(code)
}

// target stores a bundle holding this test binary as bin/app.
func target(t *testing.T) (deploy.Target, *artifact.Store) {
	exe, err := os.Executable()
	require.NoError(t, err)
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.tar.zst")
	digest, size, err := artifact.WriteBundleFile(path, []artifact.File{{Path: "bin/app", Source: exe, Mode: 0o755}})
	require.NoError(t, err)
	st, err := artifact.OpenStore(filepath.Join(dir, "artifacts"))
	require.NoError(t, err)
	_, _, err = st.PutFile(path, digest)
	require.NoError(t, err)
	return deploy.Target{
		Package: "Fake_App", Version: "0123456789abcdef", Digest: digest, Size: size,
		Artifacts: []deploy.Artifact{{Kind: deploy.KindExecutable, Name: "app", Path: "bin/app"}},
	}, st
}

func TestContainerizeAndRun(t *testing.T) {
	cli := testsuite.Docker(t)
	ctx := context.Background()
	tg, st := target(t)
	b, err := docker.New(docker.Options{Client: cli, Artifacts: st, WorkDir: t.TempDir()})
	require.NoError(t, err)

	start := time.Now()
	c, err := b.Containerize(ctx, tg)
	require.NoError(t, err)
	require.True(t, c.Built)
	require.Equal(t, "dflow-app/fake_app:"+tg.Digest[:12], c.Image)
	ii, err := cli.ImageInspect(ctx, c.Image)
	require.NoError(t, err)
	t.Logf("built %s (%.1f MB) in %s", c.Image, float64(ii.Size)/1e6, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	again, err := b.Containerize(ctx, tg)
	require.NoError(t, err)
	require.False(t, again.Built, "the image exists: nothing is rebuilt")
	require.Less(t, time.Since(start), time.Second)

	// Run it as the agent would, and ask it for /health.
	cr, err := cli.ContainerCreate(ctx, &container.Config{
		Image: c.Image,
		Env:   []string{"PORT=8080", "DFLOW_VERSION=v1", fakeapp.Env + "=1"},
		Labels: map[string]string{
			testsuite.DockerTestLabel: "1", testsuite.DockerRunLabel: testsuite.DockerRun(),
		},
	}, nil, nil, nil, "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = cli.ContainerRemove(context.Background(), cr.ID, container.RemoveOptions{Force: true}) })
	require.NoError(t, cli.ContainerStart(ctx, cr.ID, container.StartOptions{}))
	ci, err := cli.ContainerInspect(ctx, cr.ID)
	require.NoError(t, err)
	require.Equal(t, docker.AppUser, ci.Config.User, "the app runs as nobody")
	ip := ci.NetworkSettings.Networks["bridge"].IPAddress
	require.NotEmpty(t, ip)
	url := fmt.Sprintf("http://%s/health", net.JoinHostPort(ip, "8080"))
	var body string
	require.Eventually(t, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 50*time.Millisecond, "GET %s", url)
	require.Equal(t, "ok", strings.TrimSpace(body))
}

// TestConformance runs the container suite against a real Docker engine:
// the node's agent (in this process) runs the versions as containers of
// the images Containerize makes, on the default bridge network.
func TestConformance(t *testing.T) {
	cli := testsuite.Docker(t) // skips, loudly, without an engine
	testsuite.ContainerSuite(t, func(t *testing.T) testsuite.ContainerHarness {
		n := testsuite.NewContainerNode(t)
		b, err := docker.New(docker.Options{Client: cli, Artifacts: n.Artifacts, WorkDir: t.TempDir(), Signer: n.Signer})
		require.NoError(t, err)
		return testsuite.ContainerHarness{Backend: b, ContainerNode: n}
	})
}

func TestStartNeedsAnImage(t *testing.T) {
	cli := testsuite.Docker(t)
	n := testsuite.NewContainerNode(t)
	b, err := docker.New(docker.Options{Client: cli, Artifacts: n.Artifacts, Signer: n.Signer})
	require.NoError(t, err)
	_, err = b.Start(context.Background(), backends.Container{Package: "x", Version: "v", Digest: n.Target.Digest}, n.Node, backends.StartOptions{ID: "p1", Exec: "bin/app"})
	require.ErrorContains(t, err, "has no image")
}

func TestContainerizeWithoutExecutable(t *testing.T) {
	cli := testsuite.Docker(t)
	tg, st := target(t)
	tg.Artifacts = nil
	b, err := docker.New(docker.Options{Client: cli, Artifacts: st})
	require.NoError(t, err)
	_, err = b.Containerize(context.Background(), tg)
	require.ErrorContains(t, err, "no executable")
}
