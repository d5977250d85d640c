package agent_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/agent/api"
	containerdocker "github.com/distributive-flow/dflow/backends/container/docker"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/stretchr/testify/require"
)

// fakeAppImage builds an image FROM scratch holding this test binary as
// /app/bin/app (with the libraries it links): run with DFLOW_FAKE_APP=1 it
// is the fake app.
func fakeAppImage(t *testing.T) string {
	cli := testsuite.Docker(t)
	t.Setenv(containerdocker.LabelsEnv, testsuite.DockerLabels())
	t.Cleanup(testsuite.CleanDocker)
	exe, err := os.Executable()
	require.NoError(t, err)
	r := &containerdocker.Rootfs{}
	require.NoError(t, r.AddMinimalSystem())
	require.NoError(t, r.AddFile("/app/bin/app", exe, 0o755))
	require.NoError(t, r.AddLibraries(exe))
	tag := "dflow-agent-test:" + testsuite.DockerRun()
	start := time.Now()
	require.NoError(t, containerdocker.BuildImage(context.Background(), cli, r, containerdocker.ImageSpec{
		Tag: tag, Instructions: []string{"USER " + containerdocker.AppUser, "WORKDIR /app"},
	}))
	t.Logf("built %s in %s", tag, time.Since(start).Round(time.Millisecond))
	return tag
}

func appContainers(t *testing.T, instance string) int {
	cli := testsuite.Docker(t)
	cs, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", "dflow.instance="+instance), filters.Arg("label", testsuite.DockerRunLabel+"="+testsuite.DockerRun()))})
	require.NoError(t, err)
	return len(cs)
}

// TestContainerVersionsSwitchUnderLoad: versions run as containers go
// through the same gate, switch and drain as processes: three container
// versions take over in turn under non-retrying load, with no failure.
func TestContainerVersionsSwitchUnderLoad(t *testing.T) {
	image := fakeAppImage(t)
	n := startAgent(t)
	ctx := context.Background()
	digest, _ := putBundle(t, n)
	req := func(id, version string, env ...string) api.StartRequest {
		r := startReq(id, version, digest, env...)
		r.Image = image
		return r
	}

	// A version that exits at once fails its gate with its log.
	_, err := n.c.StartProcess(ctx, req("bad", "v0", "DFLOW_FAKE_EXIT=3"))
	var ge *api.GateError
	require.ErrorAs(t, err, &ge)
	require.Contains(t, ge.Reason, "exit status 3")
	require.Contains(t, ge.LogTail, "exiting with status 3")
	require.Zero(t, appContainers(t, "bad"), "the failed version's container is removed")

	start := time.Now()
	v1, err := n.c.StartProcess(ctx, req("c1", "v1"))
	require.NoError(t, err)
	t.Logf("container version ready in %s (pid %d, port %d)", time.Since(start).Round(time.Millisecond), v1.PID, v1.Port)
	require.Equal(t, api.StateReady, v1.State)
	appPort := testsuite.FreePort(t)
	_, err = n.c.Switch(ctx, api.SwitchRequest{ID: "c1", AppPort: appPort})
	require.NoError(t, err)

	url := fmt.Sprintf("http://127.0.0.1:%d/", appPort)
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}, Timeout: 30 * time.Second}
	code, body, err := testsuite.Post(hc, url, "hi")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "v1:hi", body)
	load := testsuite.StartLoad(t, []string{url}, testsuite.LoadOptions{Workers: 8, Timeout: 30 * time.Second, Send: echoLoad(3, nil)})
	prev := "c1"
	for v := 2; v <= 3; v++ {
		time.Sleep(300 * time.Millisecond)
		id := fmt.Sprintf("c%d", v)
		_, err := n.c.StartProcess(ctx, req(id, fmt.Sprintf("v%d", v)))
		require.NoError(t, err)
		res, err := n.c.Switch(ctx, api.SwitchRequest{ID: id, AppPort: appPort})
		require.NoError(t, err)
		require.Equal(t, prev, res.Previous)
		stopped, err := n.c.StopProcess(ctx, prev, api.StopRequest{DrainTimeout: 10 * time.Second, Grace: 5 * time.Second})
		require.NoError(t, err)
		require.Equal(t, api.StateStopped, stopped.State)
		require.Zero(t, appContainers(t, prev), "%s's container is removed", prev)
		prev = id
	}
	time.Sleep(300 * time.Millisecond)
	load.Stop()
	served := load.Served(url)
	t.Logf("container rollout under load: %d requests, served per version %v, %d failed",
		load.OK()+int64(load.Failed()), served, load.Failed())
	require.Empty(t, load.Sample())
	for v := 1; v <= 3; v++ {
		require.Greater(t, served[fmt.Sprintf("v%d", v)], int64(10), "v%d served", v)
	}

	// The version's output is in its log file; stop --now with a grace.
	l, err := n.c.Processes(ctx)
	require.NoError(t, err)
	info := find(t, l, "c3")
	logText, err := os.ReadFile(info.Log)
	require.NoError(t, err)
	require.Contains(t, string(logText), "fake app v3 starting")
	require.Equal(t, 1, appContainers(t, "c3"))
	stopped, err := n.c.StopProcess(ctx, "c3", api.StopRequest{Now: true, Grace: time.Second})
	require.NoError(t, err)
	require.Equal(t, api.StateStopped, stopped.State)
	require.Zero(t, appContainers(t, "c3"))
}
