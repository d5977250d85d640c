package testsuite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/agent"
	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/agent/auth"
	"github.com/distributive-flow/dflow/agent/process/fakeapp"
	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// ContainerNode is what a container backend's conformance test needs
// besides the backend: a Target whose executable is this test binary (run
// with Env, it is the fake app of agent/process/fakeapp: the test's
// TestMain must call fakeapp.ServeIfAsked first), its bundle in an
// artifact store, and a real node agent, running in this process, that
// holds the bundle and authorizes Signer.
type ContainerNode struct {
	Target    deploy.Target
	Artifacts *artifact.Store
	Node      deploy.Node
	// Signer signs requests to Node's agent; its key is KeyDir/id_ed25519
	// (auth.LoadOrCreateKey), for backends that run in another process.
	Signer ssh.Signer
	KeyDir string
	// Env makes the Target's executable the fake app.
	Env map[string]string
}

// NewContainerNode starts a node agent in this process (stopped when t
// ends) and gives it the bundle of a Target made of this test binary.
func NewContainerNode(t *testing.T) ContainerNode {
	t.Helper()
	ctx := context.Background()
	keyDir := t.TempDir()
	signer, err := auth.LoadOrCreateKey(keyDir, "container-suite")
	require.NoError(t, err)

	tg, path := fakeAppTarget(t)
	st, err := artifact.OpenStore(filepath.Join(t.TempDir(), "artifacts"))
	require.NoError(t, err)
	_, _, err = st.PutFile(path, tg.Digest)
	require.NoError(t, err)

	dir := t.TempDir()
	id := "container-suite-" + containerNodeSuffix()
	logs := &SyncBuffer{}
	t.Cleanup(func() { // after the agent's stop
		if t.Failed() {
			t.Logf("node agent %s's log:\n%s", id, logs.String())
		}
	})
	a := StartAgent(t, signer, agent.Options{
		Dir: dir, Listen: "127.0.0.1:0", Index: 0, NodeID: id, Version: "test",
		Log: log.New(logs, "", log.Lmicroseconds),
	})
	n := deploy.Node{Index: 0, ID: id, Address: "127.0.0.1", AgentURL: "http://" + a.Addr(), Backend: "test", CreatedAt: time.Now().UTC()}
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, api.NewClient(n.AgentURL, n.ID, signer).PutArtifact(ctx, tg.Digest, f, tg.Size, false))
	return ContainerNode{
		Target: tg, Artifacts: st, Node: n, Signer: signer, KeyDir: keyDir,
		Env: map[string]string{fakeapp.Env: "1"},
	}
}

var (
	fakeAppOnce   sync.Once
	fakeAppBundle string
	fakeAppDigest string
	fakeAppSize   int64
	fakeAppErr    error
)

// FakeAppBundle is a bundle holding this test binary as bin/app, written
// once per test binary: started with fakeapp.Env=1 it is the fake app.
func FakeAppBundle(t *testing.T) (path, digest string, size int64) {
	t.Helper()
	fakeAppOnce.Do(func() {
		exe, err := os.Executable()
		if err != nil {
			fakeAppErr = err
			return
		}
		dir, err := os.MkdirTemp("", "dflow-fake-app-")
		if err != nil {
			fakeAppErr = err
			return
		}
		fakeAppBundle = filepath.Join(dir, "bundle.tar.zst")
		fakeAppDigest, fakeAppSize, fakeAppErr = artifact.WriteBundleFile(fakeAppBundle, []artifact.File{{Path: "bin/app", Source: exe, Mode: 0o755}})
	})
	require.NoError(t, fakeAppErr)
	return fakeAppBundle, fakeAppDigest, fakeAppSize
}

// fakeAppTarget is the Target of FakeAppBundle, and the bundle's path.
func fakeAppTarget(t *testing.T) (deploy.Target, string) {
	path, digest, size := FakeAppBundle(t)
	return deploy.Target{
		Package: "Fake_App", Version: "0123456789abcdef0123456789abcdef01234567", Digest: digest, Size: size,
		Artifacts: []deploy.Artifact{{Kind: deploy.KindExecutable, Name: "app", Path: "bin/app"}},
	}, path
}

// containerNodeSuffix tells one suite node's ID from another's.
func containerNodeSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ContainerHarness is a container backend under test and the node it runs
// versions on.
type ContainerHarness struct {
	Backend backends.ContainerBackend
	ContainerNode
}

// ContainerSuite is the conformance suite every ContainerBackend passes.
// open returns a backend and a fresh node (NewContainerNode).
func ContainerSuite(t *testing.T, open func(t *testing.T) ContainerHarness) {
	ctx := context.Background()
	opts := func(h ContainerHarness, id string, env ...string) backends.StartOptions {
		e := map[string]string{}
		for k, v := range h.Env {
			e[k] = v
		}
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			e[k] = v
		}
		return backends.StartOptions{ID: id, Exec: "bin/app", Env: e, ReadyProbes: 2, ReadyTimeout: 30 * time.Second}
	}
	containerize := func(t *testing.T, h ContainerHarness) backends.Container {
		c, err := h.Backend.Containerize(ctx, h.Target)
		require.NoError(t, err)
		return c
	}
	// route makes p the node's public port's upstream and returns its URL.
	route := func(t *testing.T, h ContainerHarness, p backends.Process) string {
		port := FreePort(t, "127.0.0.1")
		_, err := api.NewClient(h.Node.AgentURL, h.Node.ID, h.Signer).Switch(ctx, api.SwitchRequest{ID: p.ID, AppPort: port})
		require.NoError(t, err)
		return fmt.Sprintf("http://127.0.0.1:%d/", port)
	}
	state := func(t *testing.T, h ContainerHarness, id string) string {
		l, err := api.NewClient(h.Node.AgentURL, h.Node.ID, h.Signer).Processes(ctx)
		require.NoError(t, err)
		for _, p := range l.Processes {
			if p.ID == id {
				return p.State
			}
		}
		return ""
	}

	t.Run("containerize is idempotent", func(t *testing.T) {
		h := open(t)
		a := containerize(t, h)
		require.Equal(t, h.Target.Package, a.Package)
		require.Equal(t, h.Target.Version, a.Version)
		require.Equal(t, h.Target.Digest, a.Digest)
		b := containerize(t, h)
		require.False(t, b.Built, "nothing is made again")
		a.Built = false
		require.Equal(t, a, b)
	})
	t.Run("containerize refuses a target without an executable", func(t *testing.T) {
		h := open(t)
		tg := h.Target
		tg.Artifacts = []deploy.Artifact{{Kind: deploy.KindSource, Name: "src", Path: "src/app.tar"}}
		_, err := h.Backend.Containerize(ctx, tg)
		require.ErrorContains(t, err, "no executable")
	})
	t.Run("a started process answers and start is idempotent", func(t *testing.T) {
		h := open(t)
		c := containerize(t, h)
		p, err := h.Backend.Start(ctx, c, h.Node, opts(h, "p1"))
		require.NoError(t, err)
		require.Equal(t, "p1", p.ID)
		require.Equal(t, h.Node.ID, p.Node.ID)
		require.Equal(t, c.Version, p.Version)
		require.Equal(t, c.Digest, p.Digest)
		require.NotZero(t, p.Port)
		require.WithinDuration(t, time.Now(), p.StartedAt, time.Minute, "StartedAt is when the node started it")
		require.Equal(t, api.StateReady, state(t, h, "p1"))
		again, err := h.Backend.Start(ctx, c, h.Node, opts(h, "p1"))
		require.NoError(t, err)
		require.Equal(t, p, again, "the same ID names the same process")
		other := c
		other.Version = "fedcba9876543210"
		_, err = h.Backend.Start(ctx, other, h.Node, opts(h, "p1"))
		require.Error(t, err, "an ID that names another version")

		code, body, err := Post(suiteClient, route(t, h, p), "hi")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, c.Version+":hi", body, "the fake app answers with its DFLOW_VERSION")
	})
	t.Run("a version that fails its gate is ErrNotReady", func(t *testing.T) {
		h := open(t)
		c := containerize(t, h)
		_, err := h.Backend.Start(ctx, c, h.Node, opts(h, "bad", "DFLOW_FAKE_EXIT=3"))
		require.ErrorIs(t, err, backends.ErrNotReady)
		require.ErrorContains(t, err, "exit status 3")
		require.Equal(t, api.StateFailed, state(t, h, "bad"))
	})
	t.Run("stop drains the requests in flight", func(t *testing.T) {
		h := open(t)
		c := containerize(t, h)
		p, err := h.Backend.Start(ctx, c, h.Node, opts(h, "p1"))
		require.NoError(t, err)
		url := route(t, h, p)
		type answer struct {
			code int
			body string
			err  error
		}
		done := make(chan answer, 1)
		go func() {
			code, body, err := Post(suiteClient, url+"?sleep=1s", "slow")
			done <- answer{code, body, err}
		}()
		time.Sleep(300 * time.Millisecond) // the request is in flight
		start := time.Now()
		require.NoError(t, h.Backend.Stop(ctx, p, backends.StopOptions{DrainTimeout: 10 * time.Second, Grace: 10 * time.Second}))
		a := <-done
		require.NoError(t, a.err)
		require.Equal(t, http.StatusOK, a.code)
		require.Equal(t, c.Version+":slow", a.body)
		require.Equal(t, api.StateStopped, state(t, h, "p1"))
		t.Logf("graceful stop took %s", time.Since(start).Round(time.Millisecond))
	})
	t.Run("stop now ends a process that ignores SIGTERM after the grace", func(t *testing.T) {
		h := open(t)
		c := containerize(t, h)
		p, err := h.Backend.Start(ctx, c, h.Node, opts(h, "p1", "DFLOW_FAKE_IGNORE_TERM=1"))
		require.NoError(t, err)
		start := time.Now()
		require.NoError(t, h.Backend.Stop(ctx, p, backends.StopOptions{Now: true, Grace: 500 * time.Millisecond}))
		require.Less(t, time.Since(start), 8*time.Second, "no draining, SIGKILL after the grace")
		require.Equal(t, api.StateStopped, state(t, h, "p1"))
	})
	t.Run("stopping a gone process is no error", func(t *testing.T) {
		h := open(t)
		c := containerize(t, h)
		p, err := h.Backend.Start(ctx, c, h.Node, opts(h, "p1"))
		require.NoError(t, err)
		require.NoError(t, h.Backend.Stop(ctx, p, backends.StopOptions{Now: true}))
		require.NoError(t, h.Backend.Stop(ctx, p, backends.StopOptions{Now: true}), "stopped already")
		require.NoError(t, h.Backend.Stop(ctx, backends.Process{ID: "never-started", Node: h.Node}, backends.StopOptions{}), "unknown to the node")
	})
}

// suiteClient keeps no connection alive: each request of the suite opens
// its own, and Post never retries one.
var suiteClient = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 30 * time.Second}
