package main_test

import (
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
)

// TestDay2EndToEnd is what an operator does after the first deploy, on
// three local nodes with examples/hello: rollbacks return to what served
// before (deploy v1, v2, rollback, v3, rollback: v1, not v2), and the nodes
// set and cycle create serve the current release when the command returns,
// while a client that does not retry sees no failure on the nodes that
// served throughout; a version that dies everywhere is a version fault,
// which repair reports without destroying a node.
func TestDay2EndToEnd(t *testing.T) {
	t.Parallel() // its own project, control plane, addresses and ports
	port := testsuite.FreePort(t)
	p := helloProject(t, fmt.Sprintf("app:\n  port: %d\n  drain_timeout: 5s\n  stop_grace: 5s\n", port))
	p.run("set", "3")

	v1 := testsuite.Git(t, p.dir, "rev-parse", "HEAD")
	p.run("deploy")
	v2 := p.commit(2)
	p.run("deploy")
	p.run("rollback")
	p.requireServing(v1)
	v3 := p.commit(3)
	p.run("deploy")
	p.requireServing(v3)
	out, errOut := p.run("rollback")
	require.Contains(t, out, "version "+v1[:12], "the rollback undoes v3: back to v1, which served before it (not v2, rolled back from)\n%s", errOut)
	p.requireServing(v1)
	errOut, code := p.fail("rollback")
	require.Equal(t, 2, code, "nothing further back is bad input, found before any workflow")
	require.Contains(t, errOut, "nothing further back")
	out, _ = p.run("releases")
	require.Regexp(t, `rollback to 1 .* succeeded \(serving\)`, out)
	_, errOut = p.run("rollback", "--version", v2)
	require.Contains(t, errOut, "was rolled back from before", "going back to a version rolled back from is warned")
	p.requireServing(v2)
	st := p.status()
	require.True(t, st.ControlPlane.Running)
	require.NotEmpty(t, st.ControlPlane.Workers, "the embedded control plane's worker polls")
	require.Equal(t, v2, st.Current.Version)
	require.Equal(t, v1, st.Previous.Version, "where rollback goes")
	require.Len(t, st.Nodes, 3)
	for _, n := range st.Nodes {
		require.Equal(t, "running", n.State)
		require.Equal(t, v2, n.Serving)
	}
	p.run("rollback")
	p.requireServing(v1)

	// Nodes 0 and 2 serve throughout; set and cycle must not disturb them.
	var urls []string
	for _, r := range p.versions() {
		if r.Index != 1 {
			urls = append(urls, r.AppURL)
		}
	}
	l := testsuite.StartLoad(t, urls, testsuite.LoadOptions{Workers: 2, Pause: 5 * time.Millisecond})

	out, errOut = p.run("set", "5")
	require.Contains(t, out, "the new nodes (3,4) serve release", errOut)
	p.requireServing(v1) // all five, through versions and the app itself
	require.Len(t, p.versions(), 5)
	out, errOut = p.run("cycle", "1")
	require.Contains(t, out, "the new nodes (1) serve release", errOut)
	p.requireServing(v1)

	l.Stop()
	t.Logf("load: %d ok, %d failed", l.OK(), l.Failed())
	require.Zero(t, l.Failed(), "failed requests: %v", l.Sample())
	require.Greater(t, l.OK(), int64(100), "the load really ran")

	// The serving version dies on every node: a version fault. Repair
	// destroys nothing, says what is wrong and what to run, and fails.
	before := map[int]string{}
	for _, r := range p.list() {
		before[r.Index] = r.ID
	}
	out, _ = p.run("versions", "-o", "json")
	var rows []struct {
		Processes []struct {
			PID   int    `json:"pid"`
			State string `json:"state"`
		} `json:"processes"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	for _, r := range rows {
		for _, pr := range r.Processes {
			if pr.State == "serving" {
				require.NoError(t, syscall.Kill(pr.PID, syscall.SIGKILL))
			}
		}
	}
	errOut, code = p.fail("repair")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "is unhealthy on 5 of 5 nodes")
	require.Contains(t, errOut, "roll back (dflow rollback)")
	after := map[int]string{}
	for _, r := range p.list() {
		after[r.Index] = r.ID
	}
	require.Equal(t, before, after, "a version fault destroys no node")
}

// status is `dflow status -o json`, the parts the tests look at.
func (p *project) status() (st struct {
	ControlPlane struct {
		Running bool              `json:"running"`
		Workers []json.RawMessage `json:"workers"`
	} `json:"control_plane"`
	Current, Previous *struct{ Version string }
	Nodes             []struct {
		Index   int    `json:"index"`
		State   string `json:"state"`
		Serving string `json:"serving"`
	} `json:"nodes"`
}) {
	p.t.Helper()
	out, _ := p.run("status", "-o", "json")
	require.NoError(p.t, json.Unmarshal([]byte(out), &st), out)
	return st
}
