package main_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	containerdocker "github.com/distributive-flow/dflow/backends/container/docker"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/stretchr/testify/require"
)

// TestDockerDeployEndToEnd: examples/hello, built by GHC, deployed to two
// nodes that are Docker containers (backends.vm: docker), each version
// running as a Docker container of an image made FROM scratch
// (backends.container: docker), the cluster state in a real etcd. A second
// commit is deployed and rolled back under load from a client that does
// not retry: zero failed requests.
func TestDockerDeployEndToEnd(t *testing.T) {
	cli := testsuite.Docker(t) // skips, loudly, without an engine
	t.Setenv(containerdocker.LabelsEnv, testsuite.DockerLabels())
	t.Cleanup(testsuite.CleanDocker) // runs last: whatever the test left
	etcd := testsuite.StartEtcd(t)
	port := testsuite.FreePort(t)
	p := helloProject(t, fmt.Sprintf(`backends:
  vm: docker
  container: docker
  store: etcd://%s
app:
  port: %d
  drain_timeout: 5s
  stop_grace: 5s
`, etcd, port))
	appContainers := func() int {
		cs, err := cli.ContainerList(context.Background(), container.ListOptions{Filters: filters.NewArgs(
			filters.Arg("label", "dflow.role=app"), filters.Arg("label", testsuite.DockerRunLabel+"="+testsuite.DockerRun()))})
		require.NoError(t, err)
		return len(cs)
	}

	start := time.Now()
	out, errOut := p.run("set", "2")
	require.Contains(t, out, "2 created", errOut)
	t.Logf("set 2 (node image built if missing, two node containers): %s", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, _, _ = p.runCtx(ctx, "set", "0", "--wait")
	})
	rows := p.list()
	require.Len(t, rows, 2)
	for _, r := range rows {
		require.Equal(t, "running", r.State)
		require.True(t, strings.HasPrefix(r.AgentURL, "http://"+r.Address+":"), r.AgentURL)
	}

	v1 := testsuite.Git(t, p.dir, "rev-parse", "HEAD")
	start = time.Now()
	out, errOut = p.run("deploy")
	require.Contains(t, out, "serves on 2 of 2 nodes", errOut)
	t.Logf("first deploy (GHC build, image, two container starts): %s", time.Since(start).Round(time.Millisecond))
	p.requireServing(v1)
	require.Equal(t, 2, appContainers(), "one app container per node")
	imgs, err := cli.ImageList(context.Background(), image.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", "dflow.package=hello"), filters.Arg("label", testsuite.DockerRunLabel+"="+testsuite.DockerRun()))})
	require.NoError(t, err)
	require.Len(t, imgs, 1, "one image for the release")
	t.Logf("app image %v: %.1f MB", imgs[0].RepoTags, float64(imgs[0].Size)/1e6)

	var urls []string
	for _, r := range p.versions() {
		urls = append(urls, r.AppURL)
	}
	l := testsuite.StartLoad(t, urls, testsuite.LoadOptions{Workers: 2, Pause: 5 * time.Millisecond})
	v2 := p.commit(2)
	start = time.Now()
	out, errOut = p.run("deploy")
	require.Contains(t, out, "serves on 2 of 2 nodes", errOut)
	t.Logf("second deploy under load: %s", time.Since(start).Round(time.Millisecond))
	p.requireServing(v2)
	require.Equal(t, 2, appContainers(), "the old versions' containers are gone")
	p.run("rollback")
	p.requireServing(v1)
	l.Stop()
	t.Logf("load: %d ok, %d failed", l.OK(), l.Failed())
	require.Zero(t, l.Failed(), "failed requests: %v", l.Sample())
	require.Greater(t, l.OK(), int64(100), "the load really ran")
	for _, u := range urls {
		seen := l.Served(u)
		require.NotZero(t, seen[v1], "%s never answered from %s under load (saw %v)", u, v1, seen)
		require.NotZero(t, seen[v2], "%s never answered from %s under load (saw %v)", u, v2, seen)
	}
	require.Equal(t, 2, appContainers())

	out, errOut = p.run("set", "0")
	require.Contains(t, out, "2 destroyed", errOut)
	require.Empty(t, p.list())
	require.Zero(t, appContainers(), "destroying the nodes removes their app containers")
}

// TestDockerNodesRunProcesses: with the process container backend, the
// GHC-built hello runs as a process inside a docker node: the built node
// image holds the libraries it links.
func TestDockerNodesRunProcesses(t *testing.T) {
	testsuite.Docker(t) // skips, loudly, without an engine
	t.Setenv(containerdocker.LabelsEnv, testsuite.DockerLabels())
	t.Cleanup(testsuite.CleanDocker)
	p := helloProject(t, fmt.Sprintf("backends:\n  vm: docker\napp:\n  port: %d\n", testsuite.FreePort(t)))
	out, errOut := p.run("set", "1")
	require.Contains(t, out, "1 created", errOut)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, _, _ = p.runCtx(ctx, "set", "0", "--wait")
	})
	v := testsuite.Git(t, p.dir, "rev-parse", "HEAD")
	out, errOut = p.run("deploy")
	require.Contains(t, out, "serves on 1 of 1 nodes", errOut)
	p.requireServing(v)
}
