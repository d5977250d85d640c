package plugin_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distributive-flow/dflow/agent/auth"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/container/process"
	"github.com/distributive-flow/dflow/backends/plugin"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
)

// serveContainerPluginIfAsked makes this test binary a container plugin
// (DFLOW_TEST_CONTAINER_PLUGIN=1): the process container backend through
// plugin.Serve, one process per call, signing agent requests with the key
// in $DFLOW_STATE_DIR (as dflow's own key is in a project's state dir).
func serveContainerPluginIfAsked() {
	if os.Getenv("DFLOW_TEST_CONTAINER_PLUGIN") != "1" {
		return
	}
	signer, err := auth.LoadOrCreateKey(os.Getenv("DFLOW_STATE_DIR"), "container-plugin")
	if err == nil {
		var b *process.Backend
		if b, err = process.New(process.Options{Signer: signer}); err == nil {
			os.Exit(plugin.Serve(context.Background(), "test-container", plugin.Handlers{Container: b}, os.Args[1:], os.Stdin, os.Stdout))
		}
	}
	os.Stderr.WriteString(err.Error() + "\n")
	os.Exit(1)
}

func containerPlugin(t *testing.T, stateDir string) backends.ContainerBackend {
	wrapper := filepath.Join(t.TempDir(), "container-plugin")
	require.NoError(t, os.WriteFile(wrapper, []byte("#!/bin/sh\nDFLOW_TEST_CONTAINER_PLUGIN=1 exec '"+testBinary(t)+"' \"$@\"\n"), 0o755))
	return open(t, wrapper, plugin.KindContainer, plugin.Env{Project: t.TempDir(), StateDir: stateDir}).Container()
}

// TestContainerPluginConformance runs the container suite against a Go
// plugin: this test binary serving the process container backend, one
// process per call, against a real node agent.
func TestContainerPluginConformance(t *testing.T) {
	testsuite.ContainerSuite(t, func(t *testing.T) testsuite.ContainerHarness {
		n := testsuite.NewContainerNode(t)
		return testsuite.ContainerHarness{Backend: containerPlugin(t, n.KeyDir), ContainerNode: n}
	})
}

// TestContainerPluginBadAnswers: a container plugin that answers another
// digest or another process than asked is refused.
func TestContainerPluginBadAnswers(t *testing.T) {
	path := script(t, `"container"`, `cat >/dev/null
case "$1" in
container.containerize) echo '{"result":{"package":"x","version":"v","digest":"other"}}' ;;
container.start) echo '{"result":{"id":"someone-else"}}' ;;
container.stop) echo '{"error":{"message":"node unreachable","retryable":true}}' ;;
esac`)
	c := open(t, path, plugin.KindContainer, plugin.Env{Project: t.TempDir()}).Container()
	ctx := context.Background()
	_, err := c.Containerize(ctx, deploy.Target{Digest: strings.Repeat("a", 64)})
	require.ErrorIs(t, err, plugin.ErrBadAnswer)
	require.ErrorContains(t, err, `answered digest "other"`)
	_, err = c.Start(ctx, backends.Container{}, deploy.Node{}, backends.StartOptions{ID: "p1"})
	require.ErrorIs(t, err, plugin.ErrBadAnswer)
	err = c.Stop(ctx, backends.Process{ID: "p1"}, backends.StopOptions{})
	require.ErrorContains(t, err, "node unreachable")
	require.False(t, plugin.Permanent(err))
}

func TestContainerKindIsDescribed(t *testing.T) {
	var out strings.Builder
	signer, err := auth.LoadOrCreateKey(t.TempDir(), "x")
	require.NoError(t, err)
	b, err := process.New(process.Options{Signer: signer})
	require.NoError(t, err)
	plugin.Serve(context.Background(), "x", plugin.Handlers{Container: b}, []string{"describe"}, strings.NewReader(""), &out)
	require.JSONEq(t, `{"result":{"protocol":1,"name":"x","kinds":["container"]}}`, out.String())
}
