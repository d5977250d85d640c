package main_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
)

// lockedBuffer is a bytes.Buffer a running command writes while the test
// reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestStuckDeployEndToEnd: a node whose agent was killed makes the deploy's
// copy to it stuck: the deploy pauses (its output says so, with the three
// decisions), the validators refuse what makes no sense (exit non-zero),
// `dflow deploy skip-node 1` lets it finish on the other nodes, the release
// records the node left out, and `dflow repair` brings the node back on the
// current release.
func TestStuckDeployEndToEnd(t *testing.T) {
	t.Parallel() // its own project, control plane, addresses and ports
	p := helloProject(t, fmt.Sprintf("app:\n  port: %d\n  drain_timeout: 2s\n  stop_grace: 2s\ndeploy:\n  stuck_timeout: 10m\n", testsuite.FreePort(t)))
	p.run("set", "3")
	p.run("deploy")

	errOut, code := p.fail("deploy", "retry")
	require.NotZero(t, code)
	require.Contains(t, errOut, "runs no operation")

	v2 := p.commit(2)
	pid := testsuite.AgentPID(t, filepath.Join(p.dir, ".dflow", "nodes", strconv.Itoa(1)))
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dep := p.command(ctx, "deploy")
	var out lockedBuffer
	dep.Stdout, dep.Stderr = &out, &out
	start := time.Now()
	require.NoError(t, dep.Start())
	ended := make(chan error, 1)
	go func() { ended <- dep.Wait() }()
	waitFor := func(what string, within time.Duration) {
		t.Helper()
		require.Eventually(t, func() bool { return strings.Contains(out.String(), what) }, within, 100*time.Millisecond,
			"the deploy's output says %q\n%s", what, out.String())
	}

	// While it builds, nothing is stuck.
	waitFor("building", 2*time.Minute)
	errOut, code = p.fail("deploy", "retry")
	require.NotZero(t, code)
	require.Contains(t, errOut, "nothing is stuck")

	waitFor("stuck: copy to node 1 failed after 5 attempts", 4*time.Minute)
	t.Logf("stuck after %s", time.Since(start).Round(100*time.Millisecond))
	require.Contains(t, out.String(), "dflow deploy skip-node 1")
	errOut, code = p.fail("deploy", "skip-node", "2")
	require.NotZero(t, code)
	require.Contains(t, errOut, "node 2 is not stuck; stuck: node 1")
	errOut, code = p.fail("deploy", "skip-node", "x")
	require.NotZero(t, code)
	require.Contains(t, errOut, "not a node index")
	o, _ := p.run("deploy", "skip-node", "1")
	require.Contains(t, o, "node 1 is left out")

	select {
	case err := <-ended:
		require.NoError(t, err, out.String())
	case <-ctx.Done():
		t.Fatalf("the deploy did not end after skip-node:\n%s", out.String())
	}
	t.Logf("the deploy's output:\n%s", out.String())
	require.Contains(t, out.String(), "skip-node 1 by")
	require.Contains(t, out.String(), "serves on 2 of 3 nodes")
	require.Contains(t, out.String(), "node 1 was left out: copy to node 1 failed after 5 attempts")
	rels, _ := p.run("releases")
	require.Contains(t, rels, "left out: node 1", rels)
	for _, r := range p.versions() {
		if r.Index != 1 {
			require.Equal(t, v2, r.Serving, "node %d", r.Index)
		}
	}

	rout, rerr := p.run("repair")
	t.Logf("repair: %s %s", rout, rerr)
	p.requireServing(v2)
}
