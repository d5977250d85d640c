package agent_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/agent"
	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/agent/auth"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// appendLog appends lines to the log at path as an app does (its own
// descriptor, opened for appending).
func appendLog(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	defer f.Close()
	for _, l := range lines {
		_, err := fmt.Fprintln(f, l)
		require.NoError(t, err)
	}
}

func readLog(t *testing.T, n node, id string, o api.LogOptions) string {
	t.Helper()
	rc, err := n.c.StreamLog(context.Background(), id, o)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return string(b)
}

// lineReader hands over the lines of a stream as they come.
func lineReader(rc io.Reader) <-chan string {
	out := make(chan string, 1000)
	go func() {
		defer close(out)
		s := bufio.NewScanner(rc)
		for s.Scan() {
			out <- s.Text()
		}
	}()
	return out
}

// expectLine waits for a line containing want, failing on other lines
// only when strict.
func expectLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "the stream ended before a line with %q", want)
			if strings.Contains(l, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no line with %q within 10s", want)
		}
	}
}

func TestLogTailAndSince(t *testing.T) {
	n := startAgent(t)
	ctx := context.Background()
	digest, _ := putBundle(t, n)
	info, err := n.c.StartProcess(ctx, startReq("l1", "v1", digest))
	require.NoError(t, err)
	require.Equal(t, filepath.Join(n.dir, "logs", "l1.log"), info.Log)
	var lines []string
	for i := 1; i <= 150; i++ {
		lines = append(lines, fmt.Sprintf("line %d", i))
	}
	appendLog(t, info.Log, lines...)
	time.Sleep(1500 * time.Millisecond) // the agent notes the log's length
	mid := time.Now()
	time.Sleep(1100 * time.Millisecond)
	appendLog(t, info.Log, "after 1", "after 2")

	for _, tc := range []struct {
		name  string
		o     api.LogOptions
		first string // the first line, "" for no output
		count int    // how many lines
	}{
		{"default is the last 100", api.LogOptions{}, "line 53", 100},
		{"last 2", api.LogOptions{Lines: 2}, "after 1", 2},
		{"last 1", api.LogOptions{Lines: 1}, "after 2", 1},
		{"all", api.LogOptions{Lines: -1}, "fake app v1 starting", 154},
		{"since the middle", api.LogOptions{Since: mid}, "after 1", 2},
		{"since the middle, last 1", api.LogOptions{Since: mid, Lines: 1}, "after 2", 1},
		{"since long ago", api.LogOptions{Since: time.Now().Add(-time.Hour)}, "fake app v1 starting", 154},
		{"since now", api.LogOptions{Since: time.Now().Add(time.Second)}, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := readLog(t, n, "l1", tc.o)
			if tc.count == 0 {
				require.Empty(t, out)
				return
			}
			got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			require.Len(t, got, tc.count, out)
			require.Contains(t, got[0], tc.first)
			require.Equal(t, "after 2", got[len(got)-1])
		})
	}
}

func TestLogRefusals(t *testing.T) {
	n := startAgent(t)
	ctx := context.Background()
	digest, _ := putBundle(t, n)
	_, err := n.c.StartProcess(ctx, startReq("r1", "v1", digest))
	require.NoError(t, err)
	// A file beside the logs that no id may reach.
	require.NoError(t, os.WriteFile(filepath.Join(n.dir, "secret.log"), []byte("secret\n"), 0o644))
	for _, tc := range []struct {
		name   string
		id     string
		o      api.LogOptions
		status int
	}{
		{"unknown id", "nosuch", api.LogOptions{}, http.StatusNotFound},
		{"a path", "../secret", api.LogOptions{}, http.StatusBadRequest},
		{"a path with its extension", "../secret.log", api.LogOptions{}, http.StatusBadRequest},
		{"the log directory", ".", api.LogOptions{}, http.StatusNotFound}, // cleaned away: no such route
		{"an absolute path", "/etc/passwd", api.LogOptions{}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := n.c.StreamLog(ctx, tc.id, tc.o)
			requireStatus(t, err, tc.status)
		})
	}
	for _, tc := range []struct{ name, query string }{
		{"negative lines", "lines=-3"},
		{"lines not a number", "lines=many"},
		{"since not a time", "since=yesterday"},
		{"follow not 1", "follow=yes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := signedGet(n, "/v1/processes/r1/log?"+tc.query)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		})
	}
	t.Run("unsigned", func(t *testing.T) {
		for _, p := range []string{"/v1/processes/r1/log", "/v1/agent/log"} {
			resp, err := http.Get("http://" + n.a.Addr() + p)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, p)
		}
	})
}

// signedGet sends a signed GET of path, query and all, to n's agent.
func signedGet(n node, path string) (*http.Response, error) {
	c := &http.Client{Transport: testTransport(n)}
	return c.Get("http://" + n.a.Addr() + path)
}

func TestLogFollow(t *testing.T) {
	n := startAgent(t)
	ctx := context.Background()
	digest, _ := putBundle(t, n)
	info, err := n.c.StartProcess(ctx, startReq("f1", "v1", digest))
	require.NoError(t, err)
	rc, err := n.c.StreamLog(ctx, "f1", api.LogOptions{Lines: 1, Follow: true})
	require.NoError(t, err)
	defer rc.Close()
	lines := lineReader(rc)
	expectLine(t, lines, "listening on port")
	appendLog(t, info.Log, "written later")
	expectLine(t, lines, "written later")

	// Stopping the instance ends the stream.
	_, err = n.c.StopProcess(ctx, "f1", api.StopRequest{Now: true})
	require.NoError(t, err)
	select {
	case <-drain(lines):
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end after its instance stopped")
	}
}

// drain is closed once lines is.
func drain(lines <-chan string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range lines {
		}
	}()
	return done
}

func TestLogRotation(t *testing.T) {
	const max = 4096
	n := startAgentWith(t, newSigner(t), func(o *agent.Options) { o.LogMaxSize = max })
	ctx := context.Background()
	digest, _ := putBundle(t, n)
	info, err := n.c.StartProcess(ctx, startReq("big", "v1", digest))
	require.NoError(t, err)
	rc, err := n.c.StreamLog(ctx, "big", api.LogOptions{Lines: 0, Follow: true})
	require.NoError(t, err)
	defer rc.Close()
	lines := lineReader(rc)

	line := func(i int) string { return fmt.Sprintf("line %04d %s", i, strings.Repeat("x", 90)) }
	next := 1
	write := func(count int) {
		var ls []string
		for range count {
			ls = append(ls, line(next))
			next++
		}
		appendLog(t, info.Log, ls...)
	}
	rotated := rotatedLog(info.Log)
	for round := range 3 {
		write(60) // about 6 KB: beyond the cap
		require.Eventually(t, func() bool {
			fi, err := os.Stat(info.Log)
			return err == nil && fi.Size() < max && fileContains(rotated, line(next-1))
		}, 10*time.Second, 50*time.Millisecond, "round %d: not rotated", round)
		cur, err := os.Stat(info.Log)
		require.NoError(t, err)
		old, err := os.Stat(rotated)
		require.NoError(t, err)
		require.LessOrEqual(t, cur.Size()+old.Size(), int64(3*max), "the log and its rotated part stay near the cap")
	}
	write(3)

	// The follower saw every line, in order, across the rotations.
	for i := 1; i < next; i++ {
		expectLine(t, lines, line(i)[:9])
	}
	// The tail spans the rotated part and the current one.
	out := readLog(t, n, "big", api.LogOptions{Lines: 10})
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, got, 10)
	for k, l := range got {
		require.Equal(t, line(next-10+k), l)
	}
	// Only the current and one rotated part are kept.
	entries, err := os.ReadDir(filepath.Dir(info.Log))
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{"big.log", "big.log.1"}, names)
}

func rotatedLog(p string) string { return p + ".1" }

func fileContains(path, s string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(b), s)
}

func TestAgentLog(t *testing.T) {
	var logFile string
	n := startAgentWith(t, newSigner(t), func(o *agent.Options) {
		logFile = filepath.Join(o.Dir, "agent.log")
		f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		require.NoError(t, err)
		t.Cleanup(func() { f.Close() })
		o.Log = log.New(io.MultiWriter(testWriter{t}, f), "", log.Lmicroseconds)
		o.LogFile = logFile
		o.LogMaxSize = 4096
	})
	ctx := context.Background()
	rc, err := n.c.StreamAgentLog(ctx, api.LogOptions{Lines: 5})
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	rc.Close()
	require.NoError(t, err)
	require.Contains(t, string(b), "listening on")

	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rc, err = n.c.StreamAgentLog(fctx, api.LogOptions{Lines: 0, Follow: true})
	require.NoError(t, err)
	defer rc.Close()
	lines := lineReader(rc)
	// A refused request is logged.
	resp, err := http.Get("http://" + n.a.Addr() + "/v1/status?marker")
	require.NoError(t, err)
	resp.Body.Close()
	expectLine(t, lines, "auth: refused")
	cancel()
	select {
	case <-drain(lines):
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end with its context")
	}

	// The agent's own log is rotated like the apps'.
	for i := range 60 { // each refusal logs about 150 bytes
		resp, err := http.Get(fmt.Sprintf("http://%s/v1/status?n=%d", n.a.Addr(), i))
		require.NoError(t, err)
		resp.Body.Close()
	}
	require.Eventually(t, func() bool {
		fi, err := os.Stat(logFile)
		return err == nil && fi.Size() < 4096 && fileContains(rotatedLog(logFile), "auth: refused \"GET\" \"/v1/status\"")
	}, 10*time.Second, 50*time.Millisecond, "the agent's log is rotated")

	// An agent whose log is not in a file says so.
	other := startAgent(t)
	_, err = other.c.StreamAgentLog(ctx, api.LogOptions{})
	requireStatus(t, err, http.StatusNotFound)
}

func newSigner(t *testing.T) ssh.Signer { return testsuite.NewSigner(t) }

// testTransport signs requests for n's agent with n's key.
func testTransport(n node) http.RoundTripper {
	return &auth.Transport{Signer: n.signer, Node: n.o.NodeID}
}

// TestContainerLogs: a version run as a container (the docker container
// backend) has its output in the same log, served the same way: tail,
// follow until it stops.
func TestContainerLogs(t *testing.T) {
	image := fakeAppImage(t)
	n := startAgent(t)
	ctx := context.Background()
	digest, _ := putBundle(t, n)
	r := startReq("dc1", "v1", digest)
	r.Image = image
	_, err := n.c.StartProcess(ctx, r)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return strings.Contains(readLog(t, n, "dc1", api.LogOptions{Lines: 1}), "fake app v1 listening")
	}, 10*time.Second, 50*time.Millisecond)
	rc, err := n.c.StreamLog(ctx, "dc1", api.LogOptions{Lines: -1, Follow: true})
	require.NoError(t, err)
	defer rc.Close()
	lines := lineReader(rc)
	expectLine(t, lines, "fake app v1 starting")
	expectLine(t, lines, "fake app v1 listening")
	_, err = n.c.StopProcess(ctx, "dc1", api.StopRequest{Now: true, Grace: time.Second})
	require.NoError(t, err)
	select {
	case <-drain(lines):
	case <-time.After(15 * time.Second):
		t.Fatal("the stream did not end after its container stopped")
	}
}
