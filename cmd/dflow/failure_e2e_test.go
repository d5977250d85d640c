package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// temporalText is what must never reach the terminal: the SDK's wrapping
// of a failure, not dflow's words.
var temporalText = []string{"scheduledEventID", "retryable:", "activity error (type:", "workflow execution error"}

// TestFailureKinds forces each kind of failure an operator meets and reads
// what the CLI says on stderr: the step that failed, the node (where there
// is one: a build runs on the control plane), the root cause, the next
// command, and none of Temporal's wrapping; the exit code is main.go's
// exitCode: 1 for a failure, 4 when deploy.stuck_action aborted a deploy.
func TestFailureKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string // after dflow.yaml's app: settings
		// setup prepares the project; then args fail.
		setup func(t *testing.T, p *project)
		args  []string
		code  int      // the exit code
		want  []string // each is in stderr
		once  string   // said once, not repeated by Go's wrapping ("" none)
	}{
		{
			name: "copy to a dead node",
			setup: func(t *testing.T, p *project) {
				p.run("set", "2")
				p.run("build")
				// Node 1's agent dies and stays dead (nothing restarts it).
				testsuite.KillAgent(t, filepath.Join(p.dir, ".dflow", "nodes", "1"))
			},
			args: []string{"copy", "--latest"},
			code: 1,
			want: []string{"copy failed after", "copy to node 1", "connection refused", "node 1's agent does not answer", "dflow repair"},
			once: "/v1/artifacts/",
		},
		{
			// A deploy's node step does not fail on a dead agent: it is
			// stuck, and deploy.stuck_action (abort) ends it.
			name: "deploy to a dead node",
			yaml: "deploy:\n  stuck_timeout: 2s\n",
			setup: func(t *testing.T, p *project) {
				p.run("set", "2")
				testsuite.KillAgent(t, filepath.Join(p.dir, ".dflow", "nodes", "1"))
			},
			args: []string{"deploy"},
			code: 4,
			want: []string{"deploy failed after", "copy to node 1 failed after 5 attempts", "connection refused", "deploy.stuck_action", "node 1's agent does not answer"},
			once: "/v1/artifacts/",
		},
		{
			name: "a build that fails its tests",
			setup: func(t *testing.T, p *project) {
				p.run("set", "1")
				spec := filepath.Join(p.dir, "test", "Spec.hs")
				b, err := os.ReadFile(spec)
				require.NoError(t, err)
				re := regexp.MustCompile(`\(statusCode st5 == 404\)`)
				require.True(t, re.Match(b), "test/Spec.hs changed: update this test")
				b = re.ReplaceAll(b, []byte("(statusCode st5 == 200)"))
				require.NoError(t, os.WriteFile(spec, b, 0o644))
				testsuite.Git(t, p.dir, "commit", "--quiet", "--all", "--message=a test that fails")
			},
			args: []string{"deploy"},
			code: 1,
			want: []string{"deploy failed after", "build", "cabal test", "FAIL unknown paths answer 404", "build.log", "no node was touched"},
		},
		{
			name: "a readiness gate that times out",
			yaml: "  ready_timeout: 3s\n  env: [HELLO_FAIL_HEALTH=1]\n", // more of app:
			setup: func(t *testing.T, p *project) {
				p.run("set", "2")
			},
			args: []string{"deploy"},
			code: 1,
			want: []string{"deploy failed after", "node 0", "did not become ready", "/health", "503", "`dflow versions` shows what each node serves"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := helloProject(t, fmt.Sprintf("app:\n  port: %d\n  drain_timeout: 2s\n  stop_grace: 2s\n%s", testsuite.FreePort(t), tt.yaml))
			tt.setup(t, p)
			errOut, code := p.fail(tt.args...)
			t.Logf("dflow %v said:\n%s", tt.args, errOut)
			require.Equal(t, tt.code, code)
			for _, w := range tt.want {
				require.Contains(t, errOut, w)
			}
			if tt.once != "" {
				// In the error, not the progress lines above it.
				msg := errOut[strings.LastIndex(errOut, "dflow: "):]
				require.Equal(t, 1, strings.Count(msg, tt.once), "%q is said once", tt.once)
			}
			for _, bad := range temporalText {
				require.NotContains(t, errOut, bad, "Temporal's wrapping reached the terminal")
			}
			require.Contains(t, errOut, "\n  next: ", "the next command to run")
		})
	}
}

// TestStatusAgrees: `dflow status -o json` says what list, versions and
// releases say: the same nodes (index, address, state), the same serving
// version on each, and the current release is the newest succeeded one of
// `dflow releases`.
func TestStatusAgrees(t *testing.T) {
	t.Parallel()
	p := helloProject(t, fmt.Sprintf("app:\n  port: %d\n  drain_timeout: 2s\n  stop_grace: 2s\n", testsuite.FreePort(t)))
	p.run("set", "2")
	v := testsuite.Git(t, p.dir, "rev-parse", "HEAD")
	p.run("deploy")

	out, _ := p.run("status", "-o", "json")
	type release struct {
		ID      int    `json:"id"`
		Kind    string `json:"kind"`
		Version string `json:"version"`
		Digest  string `json:"digest"`
		Outcome string `json:"outcome"`
	}
	var st struct {
		Current  *release `json:"current"`
		Previous *release `json:"previous"`
		Count    int      `json:"count"`
		Nodes    []struct {
			Index   int    `json:"index"`
			Address string `json:"address"`
			State   string `json:"state"`
			Serving string `json:"serving"`
		} `json:"nodes"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &st), out)

	rows := p.list()
	require.Len(t, st.Nodes, len(rows), "status and list show the same nodes")
	require.Equal(t, len(rows), st.Count)
	for i, r := range rows {
		require.Equal(t, r.Index, st.Nodes[i].Index)
		require.Equal(t, r.Address, st.Nodes[i].Address, "node %d", r.Index)
		require.Equal(t, r.State, st.Nodes[i].State, "node %d", r.Index)
	}
	vers := p.versions()
	require.Len(t, vers, len(st.Nodes))
	for i, r := range vers {
		require.Equal(t, r.Index, st.Nodes[i].Index)
		require.Equal(t, v, r.Serving, "node %d", r.Index)
		require.Equal(t, r.Serving, st.Nodes[i].Serving, "node %d: status and versions", r.Index)
	}

	out, _ = p.run("releases", "-o", "json")
	var rels []release
	require.NoError(t, json.Unmarshal([]byte(out), &rels), out)
	require.Len(t, rels, 1)
	require.NotNil(t, st.Current)
	require.Equal(t, rels[0], *st.Current, "status's current release is the one releases lists")
	require.Equal(t, v, st.Current.Version)
	require.Equal(t, "succeeded", st.Current.Outcome)
	require.Nil(t, st.Previous, "one deploy: nothing to go back to")
}

// workflowCount is how many workflows (open and closed) the Temporal
// visibility API lists for p's control plane.
func workflowCount(t *testing.T, p *project) int {
	t.Helper()
	var info struct {
		Frontend string `json:"frontend"`
	}
	out, _ := p.run("server", "status", "-o", "json")
	require.NoError(t, json.Unmarshal([]byte(out), &info), out)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: info.Frontend})
	require.NoError(t, err)
	defer c.Close()
	n := 0
	var token []byte
	for {
		list, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 1000, NextPageToken: token})
		require.NoError(t, err)
		n += len(list.Executions)
		if token = list.NextPageToken; len(token) == 0 {
			return n
		}
	}
}
