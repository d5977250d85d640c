package main_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
)

// TestRepairGuardEndToEnd: a verify program that calls the current
// version unhealthy on every node is a version fault: repair destroys
// nothing, says so, exits 1, and the nodes keep serving. A node whose agent
// died is a node fault: only it is replaced. Two nodes with rotted
// executables are replaced one after the other (repair.max_unavailable 1),
// in the order the progress shows.
func TestRepairGuardEndToEnd(t *testing.T) {
	t.Parallel() // its own project, control plane, addresses and ports
	p := helloProject(t, fmt.Sprintf("app:\n  port: %d\nverify:\n  program: verify.sh\n", testsuite.FreePort(t)))
	verify := "#!/bin/sh\n# health threshold: 0 while the file 'unhealthy' exists\nif [ -e \"" + filepath.Join(p.dir, "unhealthy") + "\" ]; then echo '0 100'; else echo '100 100'; fi\n"
	require.NoError(t, os.WriteFile(filepath.Join(p.dir, "verify.sh"), []byte(verify), 0o755))
	testsuite.Git(t, p.dir, "add", "verify.sh")
	testsuite.Git(t, p.dir, "commit", "--quiet", "--message=verify program")
	p.run("set", "3")
	p.run("deploy")
	ids := func() map[int]string {
		out := map[int]string{}
		for _, r := range p.list() {
			out[r.Index] = r.ID
		}
		return out
	}
	serves := func() {
		t.Helper()
		for _, r := range p.versions() {
			resp, err := http.Get(r.AppURL)
			require.NoError(t, err, "node %d", r.Index)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode, "node %d", r.Index)
		}
	}

	// A version fault: nothing is destroyed and the nodes keep serving.
	before := ids()
	require.NoError(t, os.WriteFile(filepath.Join(p.dir, "unhealthy"), nil, 0o644))
	errOut, code := p.fail("repair")
	require.Equal(t, 1, code, errOut)
	require.Contains(t, errOut, "is unhealthy on 3 of 3 nodes")
	require.Contains(t, errOut, "roll back (dflow rollback) or fix it")
	require.Contains(t, errOut, "next: `dflow rollback`")
	require.Equal(t, before, ids(), "a version fault destroys no node")
	serves()
	require.NoError(t, os.Remove(filepath.Join(p.dir, "unhealthy")))

	// A node fault: node 1's agent died; only node 1 is replaced.
	pid := testsuite.AgentPID(t, filepath.Join(p.dir, ".dflow", "nodes", "1"))
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	out, errOut := p.run("repair")
	require.Contains(t, out, "node 1 replaced", errOut)
	after := ids()
	require.Equal(t, before[0], after[0])
	require.Equal(t, before[2], after[2])
	require.NotEqual(t, before[1], after[1])
	serves()

	// Two nodes that still serve, both broken: one at a time, in order.
	p.corruptServing(0)
	p.corruptServing(2)
	out, errOut = p.run("repair")
	first := strings.Index(errOut, "batch 1 of 2: node 0")
	second := strings.Index(errOut, "batch 2 of 2: node 2")
	require.True(t, first >= 0 && second > first, "node 0's batch, then node 2's:\n%s\n%s", out, errOut)
	require.Less(t, strings.Index(errOut, "node 0 serves"), second, "node 0 serves again before node 2 is taken out")
	final := ids()
	require.NotEqual(t, after[0], final[0])
	require.NotEqual(t, after[2], final[2])
	require.Equal(t, after[1], final[1])
	serves()
}
