package agent_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/agent"
	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/agent/process/fakeapp"
	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

func TestMain(m *testing.M) {
	fakeapp.ServeIfAsked()
	os.Exit(m.Run())
}

// node is a real agent on 127.0.0.1 with a client allowed to control it.
type node struct {
	a      *agent.Agent
	c      *api.Client
	dir    string
	signer ssh.Signer // a key in the node's authorized_keys
	o      agent.Options
}

func startAgent(t *testing.T) node { return startAgentWith(t, testsuite.NewSigner(t), nil) }

// startAgentWith starts an agent that authorizes signer, with options
// tuned by tune (may be nil), in a new directory unless tune sets Dir.
func startAgentWith(t *testing.T, signer ssh.Signer, tune func(*agent.Options)) node {
	t.Helper()
	o := agent.Options{
		Dir: t.TempDir(), Listen: "127.0.0.1:0", Index: 7, NodeID: "test-node", Version: "test",
		Log: log.New(testWriter{t}, "", log.Lmicroseconds),
	}
	if tune != nil {
		tune(&o)
	}
	a := testsuite.StartAgent(t, signer, o)
	return node{a: a, c: api.NewClient("http://"+a.Addr(), o.NodeID, signer), dir: o.Dir, signer: signer, o: o}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// testBundle is a bundle holding this test binary as bin/app: started with
// DFLOW_FAKE_APP=1 it is the fake app.
func testBundle(t *testing.T) (path, digest string, size int64) {
	t.Helper()
	return testsuite.FakeAppBundle(t)
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func putBundle(t *testing.T, n node) (digest string, sent int64) {
	t.Helper()
	path, digest, size := testBundle(t)
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	cr := &countingReader{r: f}
	require.NoError(t, n.c.PutArtifact(context.Background(), digest, cr, size, false))
	return digest, cr.n.Load()
}

func startReq(id, version, digest string, env ...string) api.StartRequest {
	r := api.StartRequest{
		ID: id, Version: version, Digest: digest, Exec: "bin/app",
		Env:           map[string]string{fakeapp.Env: "1"},
		ProbeInterval: 20 * time.Millisecond, ReadyTimeout: 20 * time.Second,
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		r.Env[k] = v
	}
	return r
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

// echoLoad is the request of a testsuite.Load to the fake app: a POST of a
// message of the worker's own that version vN must echo as "vN:message",
// 1 <= N <= last; every fourth request asks for a 100ms answer, so that
// requests are in flight at each switch. stoppedAt (nil: none) tells when
// vN was stopped (unix ns, 0: not yet): an answer from a version stopped
// before the request was sent fails.
func echoLoad(last int, stoppedAt func(v int) int64) func(c *http.Client, url string, w, i int) (string, error) {
	return func(c *http.Client, url string, w, i int) (string, error) {
		msg := fmt.Sprintf("w%d-%d", w, i)
		if i%4 == 0 {
			url += "?sleep=100ms"
		}
		sent := time.Now().UnixNano()
		code, body, err := testsuite.Post(c, url, msg)
		var v int
		if err != nil || code != http.StatusOK {
			return "", fmt.Errorf("%d %q %v", code, body, err)
		}
		if _, err := fmt.Sscanf(body, "v%d:", &v); err != nil || body != fmt.Sprintf("v%d:%s", v, msg) || v < 1 || v > last {
			return "", fmt.Errorf("%d %q: not an echo of %q by v1 to v%d", code, body, msg, last)
		}
		if stoppedAt != nil {
			if at := stoppedAt(v); at != 0 && sent > at {
				return "", fmt.Errorf("%q answered by v%d, stopped before the request was sent", msg, v)
			}
		}
		return fmt.Sprintf("v%d", v), nil
	}
}

func TestArtifacts(t *testing.T) {
	n := startAgent(t)
	ctx := context.Background()
	path, digest, size := testBundle(t)

	has, err := n.c.HasArtifact(ctx, digest)
	require.NoError(t, err)
	require.False(t, has)
	_, sent := putBundle(t, n)
	require.Equal(t, size, sent)
	has, err = n.c.HasArtifact(ctx, digest)
	require.NoError(t, err)
	require.True(t, has)
	_, sent = putBundle(t, n)
	require.Zero(t, sent, "the second put sends nothing")
	list, err := n.c.Artifacts(ctx)
	require.NoError(t, err)
	require.Equal(t, []api.ArtifactInfo{{Digest: digest, Size: size}}, list)

	// A large corrupted upload, streamed: refused at EOF, the good copy kept.
	good, err := os.ReadFile(path)
	require.NoError(t, err)
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 0xff
	err = n.c.PutArtifact(ctx, digest, bytes.NewReader(bad), int64(len(bad)), true)
	require.ErrorIs(t, err, artifact.ErrDigestMismatch)
	var ae *api.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusBadRequest, ae.Status)
	require.True(t, ae.Permanent())
	st, err := artifact.OpenStore(filepath.Join(n.dir, "artifacts"))
	require.NoError(t, err)
	require.NoError(t, st.Verify(digest), "the good copy is kept")

	// A large corrupted upload of something the node does not have.
	data := make([]byte, 3<<20)
	_, _ = rand.Read(data)
	sum := sha256.Sum256(data)
	other := hex.EncodeToString(sum[:])
	data[0] ^= 1
	require.ErrorIs(t, n.c.PutArtifact(ctx, other, bytes.NewReader(data), -1, false), artifact.ErrDigestMismatch)
	has, err = n.c.HasArtifact(ctx, other)
	require.NoError(t, err)
	require.False(t, has, "nothing kept")

	// A small corrupted upload.
	sum = sha256.Sum256([]byte("hello"))
	small := hex.EncodeToString(sum[:])
	require.ErrorIs(t, n.c.PutArtifact(ctx, small, strings.NewReader("hellO"), 5, false), artifact.ErrDigestMismatch)
	require.NoError(t, n.c.PutArtifact(ctx, small, strings.NewReader("hello"), 5, false))
	// Prepared (unpacked) releases: a blob that is no bundle is a 422, a
	// missing one a 404, a bundle unpacks (again: nothing to do).
	err = n.c.PrepareRelease(ctx, small)
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusUnprocessableEntity, ae.Status, err.Error())
	err = n.c.PrepareRelease(ctx, other)
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusNotFound, ae.Status, err.Error())
	require.NoError(t, n.c.PrepareRelease(ctx, digest))
	require.FileExists(t, filepath.Join(n.dir, "releases", digest, "bin", "app"))
	require.NoError(t, n.c.PrepareRelease(ctx, digest))
	require.NoError(t, n.c.RemoveArtifact(ctx, small))
	has, err = n.c.HasArtifact(ctx, small)
	require.NoError(t, err)
	require.False(t, has)
	require.NoError(t, n.c.RemoveArtifact(ctx, small), "removing an absent artifact is no error")
	left, err := os.ReadDir(filepath.Join(n.dir, "artifacts"))
	require.NoError(t, err)
	require.Len(t, left, 1, "no temp files left behind")
}

func TestRolloutUnderLoad(t *testing.T) {
	n := startAgent(t)
	ctx := context.Background()
	digest, _ := putBundle(t, n)

	v1, err := n.c.StartProcess(ctx, startReq("r1-v1", "v1", digest))
	require.NoError(t, err)
	require.Equal(t, api.StateReady, v1.State)
	require.True(t, alive(v1.PID))
	again, err := n.c.StartProcess(ctx, startReq("r1-v1", "v1", digest))
	require.NoError(t, err, "start is idempotent")
	require.Equal(t, v1.PID, again.PID)

	appPort := testsuite.FreePort(t)
	res, err := n.c.Switch(ctx, api.SwitchRequest{ID: "r1-v1", AppPort: appPort})
	require.NoError(t, err)
	require.Equal(t, api.SwitchResult{Previous: "", Serving: "r1-v1"}, res)
	res, err = n.c.Switch(ctx, api.SwitchRequest{ID: "r1-v1", AppPort: appPort})
	require.NoError(t, err, "switch is idempotent")
	require.Equal(t, "r1-v1", res.Serving)

	url := fmt.Sprintf("http://127.0.0.1:%d/", appPort)
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 32}, Timeout: 30 * time.Second}
	code, body, err := testsuite.Post(hc, url, "hi")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "v1:hi", body)

	// 16 workers POST without retries while five new versions in turn
	// start, take over, and see the previous one drained and stopped; no
	// request fails, none is answered by a version already stopped.
	const rounds = 5
	var stoppedAt [rounds + 2]atomic.Int64 // when StopProcess returned, unix ns
	load := testsuite.StartLoad(t, []string{url}, testsuite.LoadOptions{Workers: 16, Timeout: 30 * time.Second,
		Send: echoLoad(rounds+1, func(v int) int64 { return stoppedAt[v].Load() })})
	started := time.Now()
	var v2 api.ProcessInfo
	prev := v1
	for round := 2; round <= rounds+1; round++ {
		time.Sleep(300 * time.Millisecond)
		id := fmt.Sprintf("r%d-v%d", round, round)
		next, err := n.c.StartProcess(ctx, startReq(id, fmt.Sprintf("v%d", round), digest))
		require.NoError(t, err)
		res, err = n.c.Switch(ctx, api.SwitchRequest{ID: id, AppPort: appPort})
		require.NoError(t, err)
		require.Equal(t, api.SwitchResult{Previous: prev.ID, Serving: id}, res)
		l, err := n.c.Processes(ctx)
		require.NoError(t, err)
		require.Equal(t, id, l.Serving)
		require.Equal(t, api.StateReady, find(t, l, prev.ID).State, "the previous one is ready until stopped")
		stopped, err := n.c.StopProcess(ctx, prev.ID, api.StopRequest{DrainTimeout: 10 * time.Second, Grace: 5 * time.Second})
		require.NoError(t, err)
		require.Equal(t, api.StateStopped, stopped.State)
		require.False(t, alive(prev.PID), "%s is gone", prev.ID)
		stoppedAt[round-1].Store(time.Now().UnixNano())
		prev = next
		if round == 2 {
			v2 = next
		}
	}
	time.Sleep(300 * time.Millisecond)
	load.Stop()
	served := load.Served(url)
	t.Logf("rollout under load: %d requests in %s by 16 workers, served per version %v, %d failed, %d switches and drained stops",
		load.OK()+int64(load.Failed()), time.Since(started).Round(time.Millisecond), served, load.Failed(), rounds)
	require.Empty(t, load.Sample())
	for v := 1; v <= rounds+1; v++ {
		require.Greater(t, served[fmt.Sprintf("v%d", v)], int64(10), "v%d served", v)
	}
	last := prev

	again, err = n.c.StopProcess(ctx, "r1-v1", api.StopRequest{})
	require.NoError(t, err, "stopping a stopped process is fine")
	require.Equal(t, api.StateStopped, again.State)
	_, err = n.c.Switch(ctx, api.SwitchRequest{ID: "r1-v1", AppPort: appPort})
	requireStatus(t, err, http.StatusConflict)

	// A version whose health check fails: a GateError, v6 keeps serving.
	badReq := startReq("r0-bad", "v0", digest, "DFLOW_FAKE_HEALTH=fail", "GREETING=x")
	badReq.ReadyTimeout = time.Second
	_, err = n.c.StartProcess(ctx, badReq)
	var ge *api.GateError
	require.ErrorAs(t, err, &ge)
	require.Equal(t, "r0-bad", ge.ID)
	require.Contains(t, ge.Probe, "/health")
	require.Contains(t, ge.Reason, "503")
	require.Contains(t, ge.LogTail, "listening on port")
	require.Contains(t, err.Error(), "unhealthy on purpose")
	_, err = n.c.StartProcess(ctx, badReq)
	require.ErrorAs(t, err, &ge, "a failed start answers the same again")
	l, err := n.c.Processes(ctx)
	require.NoError(t, err)
	require.Equal(t, last.ID, l.Serving)
	bad := find(t, l, "r0-bad")
	require.Equal(t, api.StateFailed, bad.State)
	require.False(t, alive(bad.PID))
	code, body, err = testsuite.Post(hc, url, "still")
	require.NoError(t, err)
	require.Equal(t, "v6:still", body)
	require.Equal(t, http.StatusOK, code)

	// The app's environment.
	resp, err := hc.Get(url + "env")
	require.NoError(t, err)
	envText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(envText), fmt.Sprintf("PORT=%d\n", last.Port))
	require.Contains(t, string(envText), "HOST=127.0.0.1\n")
	require.Contains(t, string(envText), "DFLOW_VERSION=v6\n")
	require.Contains(t, string(envText), "DFLOW_INDEX=7\n")

	// Checksums of the unpacked release.
	exe, err := os.Executable()
	require.NoError(t, err)
	want, _, err := artifact.FileSHA256(exe)
	require.NoError(t, err)
	got, err := n.c.Checksum(ctx, digest, "bin/app")
	require.NoError(t, err)
	require.Equal(t, want, got)
	_, err = n.c.Checksum(ctx, digest, "../../agent.pid")
	requireStatus(t, err, http.StatusBadRequest)
	_, err = n.c.Checksum(ctx, digest, "bin/nope")
	requireStatus(t, err, http.StatusNotFound)

	logText, err := n.c.Log(ctx, last.ID, 5)
	require.NoError(t, err)
	require.Contains(t, logText, "listening on port")

	// The artifact is in use.
	requireStatus(t, n.c.RemoveArtifact(ctx, digest), http.StatusConflict)

	// stop --now does not wait for requests in flight; an app that ignores
	// SIGTERM is killed after the grace.
	v4, err := n.c.StartProcess(ctx, startReq("r9-v9", "v9", digest, "DFLOW_FAKE_IGNORE_TERM=1"))
	require.NoError(t, err)
	_, err = n.c.Switch(ctx, api.SwitchRequest{ID: "r9-v9", AppPort: appPort})
	require.NoError(t, err)
	slow := make(chan string, 1)
	go func() {
		code, body, err := testsuite.Post(hc, url+"?sleep=5s", "slow")
		slow <- fmt.Sprint(code, body, err)
	}()
	time.Sleep(200 * time.Millisecond)
	started = time.Now()
	info, err := n.c.StopProcess(ctx, "r9-v9", api.StopRequest{Now: true, Grace: 300 * time.Millisecond})
	require.NoError(t, err)
	require.Equal(t, api.StateStopped, info.State)
	require.Less(t, time.Since(started), 2*time.Second)
	require.False(t, alive(v4.PID))
	require.Contains(t, <-slow, "502", "the request in flight was cut")

	// Agent Stop leaves no app behind and closes the public port.
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	require.NoError(t, n.a.Stop(sctx))
	require.NoError(t, n.a.Stop(sctx), "stop twice")
	require.False(t, alive(last.PID), "no orphan after agent Stop")
	require.False(t, alive(v2.PID))
	_, _, err = testsuite.Post(hc, url, "after")
	require.Error(t, err)
}

func TestStartErrors(t *testing.T) {
	n := startAgent(t)
	ctx := context.Background()
	missing := strings.Repeat("ab", 32)
	_, err := n.c.StartProcess(ctx, startReq("x1", "v1", missing))
	requireStatus(t, err, http.StatusNotFound)
	require.ErrorContains(t, err, missing)
	require.ErrorIs(t, err, artifact.ErrNotFound)

	r := startReq("../evil", "v1", missing)
	_, err = n.c.StartProcess(ctx, r)
	requireStatus(t, err, http.StatusBadRequest)
	r = startReq("x2", "v1", missing)
	r.Exec = "../bin/app"
	_, err = n.c.StartProcess(ctx, r)
	requireStatus(t, err, http.StatusBadRequest)
	r = startReq("x3", "v1", missing, "PORT=1")
	_, err = n.c.StartProcess(ctx, r)
	requireStatus(t, err, http.StatusBadRequest)
	r = startReq("x3", "v1", missing, "HOST=0.0.0.0")
	_, err = n.c.StartProcess(ctx, r)
	requireStatus(t, err, http.StatusBadRequest)
	require.ErrorContains(t, err, "env HOST is set by the agent")

	_, err = n.c.StopProcess(ctx, "nobody", api.StopRequest{})
	requireStatus(t, err, http.StatusNotFound)
	_, err = n.c.Switch(ctx, api.SwitchRequest{ID: "nobody", AppPort: 1234})
	requireStatus(t, err, http.StatusNotFound)

	digest, _ := putBundle(t, n)
	r = startReq("x4", "v1", digest)
	r.Exec = "bin/none"
	_, err = n.c.StartProcess(ctx, r)
	requireStatus(t, err, http.StatusUnprocessableEntity)

	// An app that exits at once fails its gate fast, naming the status.
	started := time.Now()
	_, err = n.c.StartProcess(ctx, startReq("x5", "v1", digest, "DFLOW_FAKE_EXIT=4"))
	var ge *api.GateError
	require.ErrorAs(t, err, &ge)
	require.Contains(t, ge.Reason, "exit status 4")
	require.Less(t, time.Since(started), 10*time.Second)

	// Same id, another version: a conflict.
	_, err = n.c.StartProcess(ctx, startReq("x5", "v2", digest))
	requireStatus(t, err, http.StatusConflict)
}

func TestProcessExitsOnItsOwn(t *testing.T) {
	n := startAgent(t)
	ctx := context.Background()
	digest, _ := putBundle(t, n)
	info, err := n.c.StartProcess(ctx, startReq("e1", "v1", digest))
	require.NoError(t, err)
	appPort := testsuite.FreePort(t)
	_, err = n.c.Switch(ctx, api.SwitchRequest{ID: "e1", AppPort: appPort})
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(info.PID, syscall.SIGKILL))
	require.Eventually(t, func() bool {
		l, err := n.c.Processes(ctx)
		return err == nil && find(t, l, "e1").State == api.StateExited
	}, 5*time.Second, 20*time.Millisecond)
	l, err := n.c.Processes(ctx)
	require.NoError(t, err)
	require.Equal(t, "e1", l.Serving, "the proxy keeps pointing at it")
	require.Contains(t, find(t, l, "e1").Error, "killed")
	code, _, err := testsuite.Post(http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/", appPort), "x")
	require.NoError(t, err)
	require.Equal(t, http.StatusBadGateway, code)

	// Stopping it takes it off the proxy.
	info, err = n.c.StopProcess(ctx, "e1", api.StopRequest{})
	require.NoError(t, err)
	require.Equal(t, api.StateExited, info.State)
	code, _, err = testsuite.Post(http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/", appPort), "x")
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, code)
}

func find(t *testing.T, l api.ProcessList, id string) api.ProcessInfo {
	t.Helper()
	for _, p := range l.Processes {
		if p.ID == id {
			return p
		}
	}
	t.Fatalf("no process %s in %+v", id, l)
	return api.ProcessInfo{}
}

func requireStatus(t *testing.T, err error, status int) {
	t.Helper()
	var ae *api.APIError
	require.True(t, errors.As(err, &ae), "want an APIError with status %d, got %v", status, err)
	require.Equal(t, status, ae.Status, "%v", err)
}

func TestTCPModeAndPortChange(t *testing.T) {
	n := startAgent(t)
	ctx := context.Background()
	digest, _ := putBundle(t, n)
	r := startReq("t1", "v1", digest)
	r.Mode = "tcp"
	_, err := n.c.StartProcess(ctx, r)
	require.NoError(t, err)
	port1 := testsuite.FreePort(t)
	_, err = n.c.Switch(ctx, api.SwitchRequest{ID: "t1", AppPort: port1, Mode: "tcp"})
	require.NoError(t, err)
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}}
	code, body, err := testsuite.Post(hc, fmt.Sprintf("http://127.0.0.1:%d/", port1), "tcp")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "v1:tcp", body)
	l, err := n.c.Processes(ctx)
	require.NoError(t, err)
	require.Equal(t, "tcp", l.Mode)
	require.Equal(t, fmt.Sprintf("127.0.0.1:%d", port1), l.AppListen)

	// An operator moves the public port (and the mode): the old one closes.
	// (In tcp mode a kept-alive connection is in flight until it closes: the
	// old proxy would wait for it, up to 10s.)
	hc.CloseIdleConnections()
	port2 := testsuite.FreePort(t)
	res, err := n.c.Switch(ctx, api.SwitchRequest{ID: "t1", AppPort: port2})
	require.NoError(t, err)
	require.Equal(t, "t1", res.Serving)
	code, body, err = testsuite.Post(hc, fmt.Sprintf("http://127.0.0.1:%d/", port2), "http")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "v1:http", body)
	_, _, err = testsuite.Post(hc, fmt.Sprintf("http://127.0.0.1:%d/", port1), "old")
	require.Error(t, err, "the old public port is closed")
	l, err = n.c.Processes(ctx)
	require.NoError(t, err)
	require.Equal(t, "http", l.Mode)
}
