package main_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	containerdocker "github.com/distributive-flow/dflow/backends/container/docker"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
)

// TestLogsEndToEnd reads examples/hello's output on two local nodes:
// the last lines of every node and of one, an agent's own log, and
// `logs -f` across a deploy, which goes on with the new version's lines
// after the cutover and ends with exit 0 on Ctrl-C.
func TestLogsEndToEnd(t *testing.T) {
	t.Parallel() // its own project, control plane, addresses and ports
	port := testsuite.FreePort(t)
	p := helloProject(t, fmt.Sprintf("app:\n  port: %d\n  drain_timeout: 2s\n  stop_grace: 2s\n", port))
	checkLogs(t, p, 2, "127.0.0.1:")
}

// TestDockerLogsEndToEnd is TestLogsEndToEnd on a node that is a Docker
// container (backends.vm: docker), its versions Docker containers too
// (backends.container: docker): the agent copies a container's output to
// the version's log, and logs to a file of its own beside docker logs.
func TestDockerLogsEndToEnd(t *testing.T) {
	testsuite.Docker(t) // skips, loudly, without an engine
	t.Setenv(containerdocker.LabelsEnv, testsuite.DockerLabels())
	t.Cleanup(testsuite.CleanDocker) // runs last: whatever the test left
	port := testsuite.FreePort(t)
	p := helloProject(t, fmt.Sprintf("backends:\n  vm: docker\n  container: docker\napp:\n  port: %d\n  drain_timeout: 2s\n  stop_grace: 2s\n", port))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, _, _ = p.runCtx(ctx, "set", "0", "--wait")
	})
	checkLogs(t, p, 1, "0.0.0.0:")
}

// checkLogs makes count nodes, deploys the project's commit and checks
// `dflow logs` in its forms, then `logs -f` across a deploy of a second
// commit. host is where hello says it listens.
func checkLogs(t *testing.T, p *project, count int, host string) {
	p.run("set", strconv.Itoa(count))
	v1 := testsuite.Git(t, p.dir, "rev-parse", "HEAD")
	p.run("deploy")

	out, _ := p.run("logs")
	for i := range count {
		require.Contains(t, out, fmt.Sprintf("node %d | hello %s listening on %s", i, v1, host), "every node's lines, prefixed")
	}
	out, _ = p.run("logs", strconv.Itoa(count-1), "--tail", "1")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 1, out)
	require.True(t, strings.HasPrefix(lines[0], fmt.Sprintf("node %d | ", count-1)), out)
	out, _ = p.run("logs", "--since", "1h", "--version", v1[:7], "0")
	require.Contains(t, out, fmt.Sprintf("node 0 %s | hello %s listening", v1[:12], v1), "--version shows it in the prefix")
	out, _ = p.run("logs", "--agent", "0")
	require.Contains(t, out, "node 0 | ")
	require.Contains(t, out, "agent: node 0 ", "the agent's own log")
	require.NotContains(t, out, "node 1 | ")
	errOut, code := p.fail("logs", "7")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "no node 7")

	// logs -f across a deploy.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := p.command(ctx, "logs", "-f")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var errb strings.Builder
	cmd.Stderr = &errb
	require.NoError(t, cmd.Start())
	f := &follower{}
	go f.read(stdout)
	for i := range count {
		f.wait(t, fmt.Sprintf("node %d | hello %s listening", i, v1), fmt.Sprintf("node %d", i))
	}

	v2 := p.commit(2)
	p.run("deploy")
	for i := range count {
		node := fmt.Sprintf("node %d ", i)
		f.wait(t, "dflow: now serving version "+v2[:12], node)
		f.wait(t, "hello "+v2+" listening", node)
	}
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	require.NoError(t, cmd.Wait(), "Ctrl-C ends logs -f with exit 0; stderr:\n%s", errb.String())
	f.mu.Lock()
	t.Logf("logs -f across a deploy:\n%s", strings.Join(f.lines, "\n"))
	f.mu.Unlock()
}

// follower keeps the lines of a stream.
type follower struct {
	mu    sync.Mutex
	lines []string
}

func (f *follower) read(r interface{ Read([]byte) (int, error) }) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		f.mu.Lock()
		f.lines = append(f.lines, s.Text())
		f.mu.Unlock()
	}
}

// wait waits for a line that starts with prefix and contains want.
func (f *follower) wait(t *testing.T, want, prefix string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		f.mu.Lock()
		for _, l := range f.lines {
			if strings.HasPrefix(l, prefix) && strings.Contains(l, want) {
				f.mu.Unlock()
				return
			}
		}
		f.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t.Fatalf("no line starting %q with %q; got:\n%s", prefix, want, strings.Join(f.lines, "\n"))
}
