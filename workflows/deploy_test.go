package workflows_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/agent"
	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/agent/process/fakeapp"
	"github.com/distributive-flow/dflow/artifact"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/container/process"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/distributive-flow/dflow/workflows"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	sdktest "go.temporal.io/sdk/testsuite"
	"golang.org/x/crypto/ssh"
)

func TestMain(m *testing.M) {
	fakeapp.ServeIfAsked()
	os.Exit(m.Run())
}

// fakeBuilder "builds" this test binary (the fake app) into a bundle whose
// version is whatever the test set last; a VERSION file makes each
// version's digest differ.
type fakeBuilder struct{ version string }

func (b *fakeBuilder) Build(ctx context.Context, d deploy.TargetDesc, o backends.BuildOptions) (deploy.Target, error) {
	exe, err := os.Executable()
	if err != nil {
		return deploy.Target{}, err
	}
	vf := filepath.Join(o.WorkDir, "VERSION")
	if err := os.WriteFile(vf, []byte(b.version), 0o644); err != nil {
		return deploy.Target{}, err
	}
	sum, size, err := artifact.FileSHA256(exe)
	if err != nil {
		return deploy.Target{}, err
	}
	path := filepath.Join(o.WorkDir, "bundle-"+b.version+".tar.zst")
	digest, bsize, err := artifact.WriteBundleFile(path, []artifact.File{{Path: "bin/app", Source: exe, Mode: 0o755}, {Path: "VERSION", Source: vf, Mode: 0o644}})
	if err != nil {
		return deploy.Target{}, err
	}
	return deploy.Target{Package: "app", Version: b.version, Digest: digest, Size: bsize, BundlePath: path,
		Artifacts: []deploy.Artifact{{Kind: deploy.KindExecutable, Name: "app", Path: "bin/app", SHA256: sum, Size: size}}}, nil
}

type fakeReader struct{}

func (fakeReader) Read(ctx context.Context, path string) (deploy.TargetDesc, error) {
	return deploy.TargetDesc{Package: "app", Version: "1.0", Executables: []deploy.Component{{Name: "app"}}}, nil
}

// fleet is a cluster of real in-process agents, each on its own loopback
// address, recorded in an in-memory store.
type fleet struct {
	cfg     deploy.Config
	store   testsuite.MemStore
	builder *fakeBuilder
	arts    *artifact.Store
	signer  ssh.Signer
	nodes   []deploy.Node
	runs    int
}

func newFleet(t *testing.T, n int) *fleet {
	t.Helper()
	signer := testsuite.NewSigner(t)
	arts, err := artifact.OpenStore(t.TempDir())
	require.NoError(t, err)
	f := &fleet{store: testsuite.NewMemStore(), builder: &fakeBuilder{}, arts: arts, signer: signer}
	f.cfg = deploy.Default(t.TempDir())
	f.cfg.App.Port = testsuite.FreePort(t)
	f.cfg.App.Env = []string{fakeapp.Env + "=1"}
	f.cfg.App.DrainTimeout = deploy.Duration(2 * time.Second)
	f.cfg.App.StopGrace = deploy.Duration(2 * time.Second)
	base := fmt.Sprintf("127.%d.%d.", 100+os.Getpid()%100, time.Now().UnixNano()%200+1)
	for i := 0; i < n; i++ {
		addr := base + fmt.Sprint(i+1)
		a := testsuite.StartAgent(t, signer, agent.Options{Dir: t.TempDir(), Listen: addr + ":0", Index: i, NodeID: fmt.Sprint("n", i),
			Version: "test", Log: log.New(io.Discard, "", 0)})
		node := deploy.Node{Index: i, ID: fmt.Sprint("n", i), Address: addr, AgentURL: "http://" + a.Addr(), Backend: "test"}
		_, err = f.store.Add(context.Background(), node)
		require.NoError(t, err)
		f.nodes = append(f.nodes, node)
	}
	return f
}

func (f *fleet) acts() *activities.Activities {
	return &activities.Activities{Open: func(ctx context.Context, cfg deploy.Config) (*activities.Backends, error) {
		ctr, err := process.New(process.Options{Signer: f.signer})
		if err != nil {
			return nil, err
		}
		return &activities.Backends{VM: testsuite.NewFakeVM(), Store: f.store, Reader: fakeReader{}, Builder: f.builder,
			Container: ctr, Artifacts: f.arts, Signer: f.signer}, nil
	}}
}

// newEnv is the SDK's test environment with every dflow workflow (for the
// children too) and acts, its log discarded.
func newEnv(acts *activities.Activities) *sdktest.TestWorkflowEnvironment {
	var s sdktest.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	workflows.Register(env)
	env.RegisterActivity(acts)
	return env
}

// outcome is how the workflow that env ran ended: its error, or nil and
// its result in result (unless result is nil).
func outcome(t *testing.T, env *sdktest.TestWorkflowEnvironment, result any) error {
	t.Helper()
	require.True(t, env.IsWorkflowCompleted())
	if err := env.GetWorkflowError(); err != nil {
		return err
	}
	if result != nil {
		require.NoError(t, env.GetWorkflowResult(result))
	}
	return nil
}

// env is a test environment with every workflow and the real activities
// against the fleet's agents.
func (f *fleet) env(t *testing.T) *sdktest.TestWorkflowEnvironment {
	env := newEnv(f.acts())
	env.SetTestTimeout(2 * time.Minute)
	// Each run its own ID, as in production (releases are keyed by it).
	f.runs++
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: fmt.Sprintf("dflow-test-%d", f.runs)})
	return env
}

// run executes a workflow in the SDK's test environment with the real
// activities against the fleet's agents.
func (f *fleet) run(t *testing.T, wf any, arg any, result any) error {
	t.Helper()
	env := f.env(t)
	env.ExecuteWorkflow(wf, f.saved(t, arg))
	return outcome(t, env, result)
}

// saved returns arg with its Config recorded as a configuration revision in
// the fleet's store, as the CLI does before it starts a workflow: app.env's
// values travel through the store, never in the workflow's input.
func (f *fleet) saved(t *testing.T, arg any) any {
	t.Helper()
	return saveConfigs(t, f.store, arg)
}

// saveConfigs records every deploy.Config in arg (a request struct, nested
// ones included) as a configuration revision in store and returns arg with
// their Revision set.
func saveConfigs(t *testing.T, store backends.Store, arg any) any {
	t.Helper()
	v := reflect.New(reflect.TypeOf(arg)).Elem()
	v.Set(reflect.ValueOf(arg))
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		if v.Kind() != reflect.Struct {
			return
		}
		if v.Type() == reflect.TypeOf(deploy.Config{}) {
			cfg := v.Interface().(deploy.Config)
			require.NoError(t, backends.Update(context.Background(), store, func(st *deploy.State) bool {
				cfg.Revision = st.PutConfig(cfg, time.Now())
				return true
			}))
			v.Set(reflect.ValueOf(cfg))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				walk(v.Field(i))
			}
		}
	}
	walk(v)
	return v.Interface()
}

func (f *fleet) deploy(t *testing.T, kind, version string, cfg deploy.Config) (workflows.DeployResult, error) {
	t.Helper()
	f.builder.version = version
	var res workflows.DeployResult
	err := f.run(t, workflows.Deploy, workflows.DeployRequest{Config: cfg, Kind: kind, Who: "test"}, &res)
	return res, err
}

// serving asks every node's public port which version answers.
func (f *fleet) serving(t *testing.T) []string {
	t.Helper()
	var out []string
	c := &http.Client{Timeout: 5 * time.Second}
	for _, n := range f.nodes {
		resp, err := c.Post(fmt.Sprintf("http://%s:%d/", n.Address, f.cfg.App.Port), "text/plain", strings.NewReader("x"))
		if err != nil {
			out = append(out, "error: "+err.Error())
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			out = append(out, fmt.Sprint(resp.StatusCode))
			continue
		}
		out = append(out, strings.TrimSuffix(string(b), ":x"))
	}
	return out
}

func all(v string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func (f *fleet) state(t *testing.T) deploy.State {
	st, err := f.store.Load(context.Background())
	require.NoError(t, err)
	return st
}

func TestDeployRollbackRestart(t *testing.T) {
	f := newFleet(t, 3)
	f.cfg.Deploy.Parallel = 2

	for _, v := range []string{"v1", "v2", "v3"} {
		res, err := f.deploy(t, deploy.ReleaseDeploy, v, f.cfg)
		require.NoError(t, err)
		require.Equal(t, deploy.OutcomeSucceeded, res.Release.Outcome)
		require.Equal(t, all(v, 3), f.serving(t))
	}
	// The second deploy found the bundle on no node; copying v3 again sends nothing.
	var cr workflows.CopyResult
	require.NoError(t, f.run(t, workflows.Copy, workflows.CopyRequest{Config: f.cfg}, &cr))
	for _, n := range cr.Nodes {
		require.Zero(t, n.Sent, "node %d had the current bundle", n.Index)
	}
	require.NoError(t, f.run(t, workflows.Copy, workflows.CopyRequest{Config: f.cfg, Force: true}, &cr))
	for _, n := range cr.Nodes {
		require.Equal(t, cr.Target.Size, n.Sent, "--through-cache sends it again")
	}

	_, err := f.deploy(t, deploy.ReleaseRollback, "", f.cfg)
	require.NoError(t, err)
	require.Equal(t, all("v2", 3), f.serving(t))
	_, err = f.deploy(t, deploy.ReleaseRollback, "", f.cfg)
	require.NoError(t, err)
	require.Equal(t, all("v1", 3), f.serving(t))
	_, err = f.deploy(t, deploy.ReleaseRollback, "", f.cfg)
	require.ErrorContains(t, err, "nothing further back to roll back to")
	require.Equal(t, all("v1", 3), f.serving(t))

	res, err := f.deploy(t, deploy.ReleaseRestart, "", f.cfg)
	require.NoError(t, err)
	require.Equal(t, all("v1", 3), f.serving(t))
	for _, o := range res.Nodes {
		require.NotEqual(t, o.Previous, o.Serving, "restart runs a fresh process on node %d", o.Index)
	}

	st := f.state(t)
	cur, ok := st.CurrentRelease()
	require.True(t, ok)
	require.Equal(t, "v1", cur.Version)
	var kinds []string
	for _, r := range st.Releases {
		kinds = append(kinds, r.Kind+":"+r.Version+":"+r.Outcome)
	}
	require.Equal(t, []string{
		"deploy:v1:succeeded", "deploy:v2:succeeded", "deploy:v3:succeeded",
		"rollback:v2:succeeded", "rollback:v1:succeeded", "restart:v1:succeeded",
	}, kinds)

	// Every node runs exactly one live process: the old ones were stopped.
	for _, n := range f.nodes {
		l, err := api.NewClient(n.AgentURL, n.ID, f.signer).Processes(context.Background())
		require.NoError(t, err)
		live := 0
		for _, p := range l.Processes {
			if p.Alive() {
				live++
			}
		}
		require.Equal(t, 1, live, "node %d", n.Index)
	}

	var stopped []workflows.StoppedOn
	require.NoError(t, f.run(t, workflows.Stop, workflows.StopRequest{Config: f.cfg}, &stopped))
	require.Equal(t, all("503", 3), f.serving(t))
	_, err = f.deploy(t, deploy.ReleaseStart, "", f.cfg)
	require.NoError(t, err)
	require.Equal(t, all("v1", 3), f.serving(t))
}

func TestDeployThatNeverBecomesReadyKeepsTheOldVersion(t *testing.T) {
	f := newFleet(t, 2)
	_, err := f.deploy(t, deploy.ReleaseDeploy, "good", f.cfg)
	require.NoError(t, err)

	bad := f.cfg
	bad.App.Env = append([]string{"DFLOW_FAKE_HEALTH=fail"}, f.cfg.App.Env...)
	bad.App.ReadyTimeout = deploy.Duration(time.Second)
	_, err = f.deploy(t, deploy.ReleaseDeploy, "bad", bad)
	require.ErrorContains(t, err, "node 0")
	require.ErrorContains(t, err, "did not become ready")
	require.ErrorContains(t, err, "/health")
	require.Equal(t, all("good", 2), f.serving(t))

	st := f.state(t)
	last := st.Releases[len(st.Releases)-1]
	require.Equal(t, deploy.OutcomeFailed, last.Outcome)
	require.Contains(t, last.Error, "did not become ready")
	cur, _ := st.CurrentRelease()
	require.Equal(t, "good", cur.Version, "a failed release never becomes current")
}

// The agent's warning about a version that listens beyond loopback comes
// back from the container backend's start, into the node's outcome and the
// release's record.
func TestDeployWarnsOfAVersionListeningBeyondLoopback(t *testing.T) {
	f := newFleet(t, 1)
	cfg := f.cfg
	cfg.App.Env = append([]string{"DFLOW_FAKE_LISTEN_HOST=0.0.0.0"}, f.cfg.App.Env...)
	res, err := f.deploy(t, deploy.ReleaseDeploy, "v1", cfg)
	require.NoError(t, err)
	require.Len(t, res.Nodes, 1)
	require.Contains(t, res.Nodes[0].Warning, "node 0: ")
	require.Contains(t, res.Nodes[0].Warning, "beyond loopback")
	st := f.state(t)
	require.Equal(t, []string{res.Nodes[0].Warning}, st.Releases[len(st.Releases)-1].Warnings)
}

func TestRestartModeStopsTheOldVersionFirst(t *testing.T) {
	f := newFleet(t, 1)
	f.cfg.App.Mode = deploy.ModeRestart
	_, err := f.deploy(t, deploy.ReleaseDeploy, "a", f.cfg)
	require.NoError(t, err)
	res, err := f.deploy(t, deploy.ReleaseDeploy, "b", f.cfg)
	require.NoError(t, err)
	require.Equal(t, all("b", 1), f.serving(t))
	l, err := api.NewClient(f.nodes[0].AgentURL, f.nodes[0].ID, f.signer).Processes(context.Background())
	require.NoError(t, err)
	for _, p := range l.Processes {
		if p.Version == "a" {
			require.Equal(t, api.StateStopped, p.State)
			require.True(t, p.StoppedAt.Before(findStarted(l, res.Release.InstanceID())), "the old version stopped before the new one started")
		}
	}
}

func findStarted(l api.ProcessList, id string) time.Time {
	for _, p := range l.Processes {
		if p.ID == id {
			return p.StartedAt
		}
	}
	return time.Time{}
}

func TestDeployWithNoNodesOrNothingToRollBack(t *testing.T) {
	f := newFleet(t, 0)
	_, err := f.deploy(t, deploy.ReleaseDeploy, "v1", f.cfg)
	require.ErrorContains(t, err, "no nodes")
	require.Empty(t, f.state(t).Builds, "nothing was built for a cluster with no nodes")
	_, err = f.deploy(t, deploy.ReleaseRollback, "", f.cfg)
	require.ErrorContains(t, err, "no nodes")

	f = newFleet(t, 1)
	_, err = f.deploy(t, deploy.ReleaseRollback, "", f.cfg)
	require.ErrorContains(t, err, "nothing is deployed yet")
	_, err = f.deploy(t, deploy.ReleaseStart, "", f.cfg)
	require.ErrorContains(t, err, "nothing is deployed yet")
}
