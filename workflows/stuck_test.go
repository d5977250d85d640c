package workflows_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/workflows"
	"github.com/stretchr/testify/require"
	sdktest "go.temporal.io/sdk/testsuite"
)

// cutOff stands between the control plane and one node's agent: while
// down says so for a request, the connection is closed without an answer
// (as an unreachable agent's would be); otherwise the request goes on to
// the agent.
type cutOff struct {
	down atomic.Pointer[func(r *http.Request) bool]
}

// cut puts a cutOff in front of node i's agent (the store and f.nodes name
// it from now on) and returns it, letting everything through.
func (f *fleet) cut(t *testing.T, i int) *cutOff {
	t.Helper()
	agent, err := url.Parse(f.nodes[i].AgentURL)
	require.NoError(t, err)
	c := &cutOff{}
	c.set(func(*http.Request) bool { return false })
	proxy := httputil.NewSingleHostReverseProxy(agent)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (*c.down.Load())(r) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.(*net.TCPConn).SetLinger(0)
				_ = conn.Close()
			}
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.nodes[i].AgentURL = srv.URL
	require.NoError(t, backends.Update(context.Background(), f.store, func(st *deploy.State) bool {
		for j := range st.Nodes {
			if st.Nodes[j].Index == f.nodes[i].Index {
				st.Nodes[j].AgentURL = srv.URL
			}
		}
		return true
	}))
	return c
}

func (c *cutOff) set(down func(r *http.Request) bool) { c.down.Store(&down) }

// everything and starts are what a cutOff may cut.
func everything(*http.Request) bool { return true }
func starts(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == "/v1/processes"
}
func nothing(*http.Request) bool { return false }

// update sends an Update from inside the test environment and records how
// it went: "accepted", or the validator's refusal.
func update(env *sdktest.TestWorkflowEnvironment, name string, arg any) *string {
	got := new(string)
	env.UpdateWorkflow(name, "", &sdktest.TestUpdateCallback{
		OnAccept: func() { *got = "accepted" },
		OnReject: func(err error) { *got = err.Error() },
		OnComplete: func(any, error) {
		},
	}, arg)
	return got
}

func index(i int) *int { return &i }

// A copy to a node whose agent does not answer pauses the deploy; the
// validators refuse what makes no sense; once the agent answers again,
// retry completes the deploy on every node.
func TestStuckCopyWaitsForRetry(t *testing.T) {
	f := newFleet(t, 3)
	_, err := f.deploy(t, deploy.ReleaseDeploy, "v1", f.cfg)
	require.NoError(t, err)
	node1 := f.cut(t, 1)
	node1.set(everything)

	f.builder.version = "v2"
	env := f.env(t)
	var wrongNode, noNode, retry, again *string
	var during deploy.Progress
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.QueryProgress)
		require.NoError(t, err)
		require.NoError(t, v.Get(&during))
		wrongNode = update(env, workflows.UpdateSkipNode, workflows.SkipNode{Node: index(2), Who: "test"})
		noNode = update(env, workflows.UpdateSkipNode, workflows.SkipNode{Who: "test"})
		node1.set(nothing)
		retry = update(env, workflows.UpdateRetry, "test")
		again = update(env, workflows.UpdateRetry, "test")
	}, 5*time.Minute)
	env.ExecuteWorkflow(workflows.Deploy, f.saved(t, workflows.DeployRequest{Config: f.cfg, Kind: deploy.ReleaseDeploy, Who: "test"}))
	var res workflows.DeployResult
	require.NoError(t, outcome(t, env, &res))

	require.Len(t, during.Stuck, 1, "the progress shows the stuck step")
	s := during.Stuck[0]
	require.Equal(t, 1, s.Node)
	require.Equal(t, "copy", s.Step)
	require.Contains(t, s.Error, "copy to node 1 failed after 5 attempts: ")
	require.Equal(t, 15*time.Minute, s.Deadline.Sub(s.Since), "deploy.stuck_timeout's default")
	require.Equal(t, deploy.StuckAbort, s.Action)
	require.Contains(t, during.Events[len(during.Events)-1].Msg, "stuck: copy to node 1 failed after 5 attempts")
	require.Contains(t, during.Events[len(during.Events)-1].Msg, "dflow deploy skip-node 1")

	require.Contains(t, *wrongNode, "node 2 is not stuck; stuck: node 1")
	require.Contains(t, *noNode, "name the stuck node")
	require.Equal(t, "accepted", *retry)
	require.Contains(t, *again, "nothing is stuck")
	require.Equal(t, deploy.OutcomeSucceeded, res.Release.Outcome)
	for _, o := range res.Nodes {
		require.Empty(t, o.LeftOut)
	}
	require.Equal(t, all("v2", 3), f.serving(t))
}

// skip-node leaves the stuck node out: the others switch, the release
// records the node left out, and the node keeps what it ran.
func TestStuckCopySkipNode(t *testing.T) {
	f := newFleet(t, 3)
	_, err := f.deploy(t, deploy.ReleaseDeploy, "v1", f.cfg)
	require.NoError(t, err)
	f.cut(t, 1).set(everything)

	f.builder.version = "v2"
	env := f.env(t)
	var skip *string
	env.RegisterDelayedCallback(func() {
		skip = update(env, workflows.UpdateSkipNode, workflows.SkipNode{Node: index(1), Who: "test"})
	}, 5*time.Minute)
	env.ExecuteWorkflow(workflows.Deploy, f.saved(t, workflows.DeployRequest{Config: f.cfg, Kind: deploy.ReleaseDeploy, Who: "test"}))
	var res workflows.DeployResult
	require.NoError(t, outcome(t, env, &res))
	require.Equal(t, "accepted", *skip)

	require.Equal(t, []string{"v2", "v1", "v2"}, f.serving(t))
	t.Logf("node 1: %s", res.Nodes[1].LeftOut)
	require.Contains(t, res.Nodes[1].LeftOut, "copy to node 1 failed after 5 attempts")
	require.Contains(t, res.Nodes[1].LeftOut, "skip-node by test")
	require.Empty(t, res.Nodes[0].LeftOut)
	st := f.state(t)
	last := st.Releases[len(st.Releases)-1]
	require.Equal(t, deploy.OutcomeSucceeded, last.Outcome)
	require.Equal(t, []int{1}, last.LeftOut)
	require.Equal(t, []int{0, 2}, last.Nodes)
	cur, _ := st.CurrentRelease()
	require.Equal(t, "v2", cur.Version, "the release serves where it could: it is current, for repair to bring node 1 up on")
}

// Unattended, a stuck start ends after deploy.stuck_timeout with
// deploy.stuck_action: abort, and the node that had switched goes back
// (compensation), without --auto-rollout.
func TestStuckStartTimesOutIntoAbort(t *testing.T) {
	f := newFleet(t, 3)
	_, err := f.deploy(t, deploy.ReleaseDeploy, "v1", f.cfg)
	require.NoError(t, err)
	f.cut(t, 1).set(starts)

	_, err = f.deploy(t, deploy.ReleaseDeploy, "v2", f.cfg)
	require.Error(t, err)
	require.ErrorContains(t, err, "aborted by deploy.stuck_action: start on node 1 failed after 5 attempts")
	require.ErrorContains(t, err, "every switched node went back to version v1")
	require.Equal(t, all("v1", 3), f.serving(t))

	st := f.state(t)
	var kinds []string
	for _, r := range st.Releases {
		kinds = append(kinds, r.Kind+":"+r.Version+":"+r.Outcome)
	}
	require.Equal(t, []string{"deploy:v1:succeeded", "deploy:v2:failed", "rollback:v1:succeeded"}, kinds)
	cur, _ := st.CurrentRelease()
	require.Equal(t, "v1", cur.Version)
}

// deploy.stuck_action: skip-node leaves the stuck node out when nobody
// decides.
func TestStuckStartTimesOutIntoSkip(t *testing.T) {
	f := newFleet(t, 2)
	_, err := f.deploy(t, deploy.ReleaseDeploy, "v1", f.cfg)
	require.NoError(t, err)
	f.cut(t, 0).set(starts)
	cfg := f.cfg
	cfg.Deploy.StuckAction = deploy.StuckSkip
	cfg.Deploy.StuckTimeout = deploy.Duration(time.Minute)
	res, err := f.deploy(t, deploy.ReleaseDeploy, "v2", cfg)
	require.NoError(t, err)
	require.Contains(t, res.Nodes[0].LeftOut, "start on node 0 failed after 5 attempts")
	require.Contains(t, res.Nodes[0].LeftOut, "skip-node by deploy.stuck_action")
	require.Equal(t, []string{"v1", "v2"}, f.serving(t))
}

// A version that fails its readiness gate is the version's fault, not a
// stuck step: the deploy fails as before, with no pause and no abort.
func TestGateFailureIsNotStuck(t *testing.T) {
	f := newFleet(t, 1)
	_, err := f.deploy(t, deploy.ReleaseDeploy, "good", f.cfg)
	require.NoError(t, err)
	bad := f.cfg
	bad.App.Env = append([]string{"DFLOW_FAKE_HEALTH=fail"}, f.cfg.App.Env...)
	bad.App.ReadyTimeout = deploy.Duration(time.Second)
	_, err = f.deploy(t, deploy.ReleaseDeploy, "bad", bad)
	require.ErrorContains(t, err, "did not become ready")
	require.NotContains(t, err.Error(), "stuck")
	require.NotContains(t, err.Error(), "aborted")
	require.Equal(t, all("good", 1), f.serving(t))
}

// The skip-node Update's argument, as the CLI sends it and as an operator
// types it into the Web UI.
func TestSkipNodeArgument(t *testing.T) {
	for _, tc := range []struct {
		in   string
		node *int
		who  string
		err  string
	}{
		{in: `{"node": 1, "who": "alice"}`, node: index(1), who: "alice"},
		{in: `{"node": 0}`, node: index(0)},
		{in: `2`, node: index(2)},
		{in: `"3"`, node: index(3)},
		{in: `null`},
		{in: `{}`},
		{in: `"one"`, err: "not a node index"},
		{in: `[1]`, err: "want the stuck node's index"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var s workflows.SkipNode
			err := json.Unmarshal([]byte(tc.in), &s)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.node, s.Node)
			require.Equal(t, tc.who, s.Who)
		})
	}
}

// --rolling-timed and --auto-rollout keep their meaning around a stuck
// step: the schedule goes on after the pause, and a node left out is not
// counted in the health check of its batch.
func TestStuckStepInATimedAutoRollout(t *testing.T) {
	f := newFleet(t, 3)
	_, err := f.deploy(t, deploy.ReleaseDeploy, "v1", f.cfg)
	require.NoError(t, err)
	f.cut(t, 1).set(starts)
	cfg := f.cfg
	cfg.Deploy.StuckAction = deploy.StuckSkip
	f.builder.version = "v2"
	var res workflows.DeployResult
	require.NoError(t, f.run(t, workflows.Deploy, workflows.DeployRequest{Config: cfg, Kind: deploy.ReleaseDeploy, Who: "test",
		RollingTimed: time.Minute, AutoRollout: true, Tolerance: 10}, &res))
	require.Equal(t, []string{"v2", "v1", "v2"}, f.serving(t))
	require.Contains(t, res.Nodes[1].LeftOut, "start on node 1 failed after 5 attempts")
	require.NotNil(t, res.Health)
	require.False(t, res.Health.Failed())
	require.Nil(t, res.Compensation)
}
