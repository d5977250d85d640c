package controlplane

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/workflows"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
)

// TestOpError: a workflow's failure reads in dflow's words: no Temporal
// wrapping, no repeated context, the next command, and the right type for
// the exit code.
func TestOpError(t *testing.T) {
	app := func(msg, typ string) error {
		return fmt.Errorf("workflow execution error (type: Deploy, workflowID: dflow-x, runID: r): %w",
			temporal.NewNonRetryableApplicationError(msg, typ, nil))
	}
	tests := []struct {
		name, op string
		err      error
		message  string
		next     string // a part of it; "" none
		aborted  bool
		bad      bool
	}{
		{name: "repeated context is said once", op: "deploy",
			err:     app("copy to node 0: copy to node 0: agent HEAD http://127.0.0.2:7077/v1/artifacts/ab: dial tcp 127.0.0.2:7077: connect: connection refused", "CopyFailed"),
			message: "copy to node 0: agent HEAD http://127.0.0.2:7077/v1/artifacts/ab: dial tcp 127.0.0.2:7077: connect: connection refused",
			next:    "node 0's agent does not answer: `dflow status` shows it, `dflow repair` replaces it; then `dflow deploy` again"},
		{name: "bad input: no next step, exit 2", op: "set", err: app("set: count 70 is more than nodes.max (64)", activities.ErrBadInput),
			message: "set: count 70 is more than nodes.max (64)", bad: true},
		{name: "aborted: its own exit code", op: "deploy", err: app("deploy stopped: aborted by ann@laptop", workflows.ErrAborted),
			message: "deploy stopped: aborted by ann@laptop", next: "`dflow releases` shows what went back", aborted: true},
		{name: "version fault", op: "repair", err: app("release 4 (version abc) is unhealthy on 3 of 3 nodes", workflows.ErrVersionFault),
			message: "release 4 (version abc) is unhealthy on 3 of 3 nodes", next: "`dflow rollback`"},
		{name: "a plain error: its root cause", op: "gc", err: fmt.Errorf("outer: %w", errors.New("disk full")),
			message: "disk full", next: "`dflow status`"},
		{name: "a generic deploy failure", op: "rollback", err: app("node 1: the bundle of version abc is gone (gc)", "Gone"),
			message: "node 1: the bundle of version abc is gone (gc)", next: "`dflow rollback` again once the cause is fixed"},
		{name: "Go's url.Error does not repeat the request", op: "copy",
			err:     app("copy to node 1: agent HEAD http://127.0.0.3:7077/v1/artifacts/ef: Head \"http://127.0.0.3:7077/v1/artifacts/ef\": dial tcp 127.0.0.3:7077: connect: connection refused", "CopyFailed"),
			message: "copy to node 1: agent HEAD http://127.0.0.3:7077/v1/artifacts/ef: dial tcp 127.0.0.3:7077: connect: connection refused",
			next:    "node 1's agent does not answer"},
		{name: "a step stuck on a dead agent, aborted: the agent is what to fix", op: "deploy",
			err:     app("copy to node 1: aborted by deploy.stuck_action: copy to node 1 failed after 5 attempts: agent HEAD http://a/v1/x: Head \"http://a/v1/x\": dial tcp 127.0.0.3:7077: connect: connection refused", workflows.ErrAborted),
			message: "copy to node 1: aborted by deploy.stuck_action: copy to node 1 failed after 5 attempts: agent HEAD http://a/v1/x: dial tcp 127.0.0.3:7077: connect: connection refused",
			next:    "`dflow releases` shows what went back; node 1's agent does not answer: `dflow status` shows it, `dflow repair` replaces it; then `dflow deploy` again", aborted: true},
		{name: "a build that failed: its output says why, whatever it says", op: "deploy",
			err:     app("build: cabal build of hello: cabal test: exit status 1\nclient: connection refused\nFAIL unknown paths answer 404", activities.ErrBuildFailed),
			message: "build: cabal build of hello: cabal test: exit status 1\nclient: connection refused\nFAIL unknown paths answer 404",
			next:    "fix what the build's output above says, then `dflow deploy` again; no node was touched"},
		{name: "a failed readiness gate", op: "restart",
			err:     app("deploy stopped: node 0 (127.0.0.5): version abc did not become ready: last probe: answered 503\nlast lines of its log:\ndb: connection refused", activities.ErrGateFailed),
			message: "deploy stopped: node 0 (127.0.0.5): version abc did not become ready: last probe: answered 503\nlast lines of its log:\ndb: connection refused",
			next:    "`dflow restart` again (the node that failed kept what it served; `dflow versions` shows what each node serves)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := opError(tt.op, 1500*time.Millisecond, "dflow-x/r", "", tt.err)
			require.Equal(t, tt.message, e.Message)
			require.NotContains(t, e.Error(), "workflow execution error")
			require.NotContains(t, e.Error(), "retryable")
			if tt.next == "" {
				require.Empty(t, e.Next)
			} else {
				require.Contains(t, e.Next, tt.next)
				require.Contains(t, e.Error(), "\n  next: ")
			}
			require.Equal(t, tt.aborted, e.Aborted())
			require.Equal(t, tt.bad, e.BadInput())
			require.Contains(t, e.Error(), tt.op+" failed after 1.5s: ")
			require.Contains(t, e.Verbose(), "workflow: dflow-x/r")
			require.Contains(t, e.Verbose(), "chain: ")
			require.ErrorIs(t, e, tt.err)
		})
	}
}

func TestSayURLOnce(t *testing.T) {
	for in, want := range map[string]string{
		`agent HEAD http://a/b: Head "http://a/b": dial tcp: refused`: "agent HEAD http://a/b: dial tcp: refused",
		`agent PUT http://a/b: Put "http://a/b": EOF`:                 "agent PUT http://a/b: EOF",
		`agent GET http://a/b: Get "http://a/c": EOF`:                 `agent GET http://a/b: Get "http://a/c": EOF`, // another URL: kept
		`Get "http://a/b": EOF`:                                       `Get "http://a/b": EOF`,                       // said once already
		"no url here":                                                 "no url here",
	} {
		require.Equal(t, want, sayURLOnce(in), in)
	}
}

func TestDedupe(t *testing.T) {
	for in, want := range map[string]string{
		"a: a: b":                       "a: b",
		"x: copy to 1: copy to 1: boom": "x: copy to 1: boom",
		"a: b: a: b":                    "a: b: a: b", // not back to back: kept
		"a: a: a: c":                    "a: c",
		"no context":                    "no context",
	} {
		require.Equal(t, want, dedupe(in), in)
	}
}
