package worker_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	etcdstore "github.com/distributive-flow/dflow/backends/store/etcd"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/distributive-flow/dflow/worker"
	"github.com/distributive-flow/dflow/worker/devserver"
	"github.com/distributive-flow/dflow/workflows"
	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
)

var record = flag.Bool("record", false, "write the histories of this test's workflows to ../workflows/testdata for the replay test")

// TestMain doubles as the node agent (the local backend starts this test
// binary with DFLOW_TEST_AGENT=1).
func TestMain(m *testing.M) {
	testsuite.ServeAgentIfAsked()
	flag.Parse()
	os.Exit(m.Run())
}

// TestProvisionOnARealServer runs the Provision workflow on the embedded
// Temporal with the real local backend and embedded store.
func TestProvisionOnARealServer(t *testing.T) {
	ctx := context.Background()
	project := t.TempDir()
	cfg := deploy.Default(project)
	cfg.Name = "itest"
	require.NoError(t, worker.RecordConfig(ctx, &cfg))
	c, env := controlPlane(t, cfg, "itest")

	run := func(name string, req workflows.ProvisionRequest) workflows.ProvisionResult {
		t.Helper()
		req.Config = cfg
		r, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "itest-" + name, TaskQueue: "itest"}, workflows.Provision, req)
		require.NoError(t, err)
		var res workflows.ProvisionResult
		require.NoError(t, r.Get(ctx, &res))
		if *record {
			writeHistory(t, c, r.GetID(), r.GetRunID(), filepath.Join("..", "workflows", "testdata", "provision-"+name+".json"))
		}
		return res
	}
	live := func() []int {
		b, err := worker.Open(ctx, cfg, env)
		require.NoError(t, err)
		defer b.Close()
		nodes, err := b.VM.List(ctx)
		require.NoError(t, err)
		st, err := b.Store.Load(ctx)
		require.NoError(t, err)
		out := []int{}
		for i, n := range nodes {
			require.Equal(t, st.Nodes[i], n, "the store agrees with what runs")
			out = append(out, n.Index)
		}
		require.Len(t, st.Nodes, len(nodes))
		return out
	}

	res := run("set-3", workflows.ProvisionRequest{Op: workflows.OpSet, Count: 3})
	require.Len(t, res.Created, 3)
	require.Equal(t, []int{0, 1, 2}, live())
	res = run("cycle-1", workflows.ProvisionRequest{Op: workflows.OpCycle, Index: 1})
	require.Len(t, res.Created, 1)
	require.Equal(t, []int{0, 1, 2}, live())
	run("destroy-2", workflows.ProvisionRequest{Op: workflows.OpDestroy, Index: 2})
	require.Equal(t, []int{0, 1}, live())
	run("set-0", workflows.ProvisionRequest{Op: workflows.OpSet, Count: 0})
	require.Equal(t, []int{}, live())
}

// controlPlane starts an embedded Temporal in cfg's state directory and a
// worker on queue with the real backends (the local VM backend starts this
// test binary as its agents); the cleanup destroys every node it made.
func controlPlane(t *testing.T, cfg deploy.Config, queue string) (client.Client, worker.Env) {
	t.Helper()
	ctx := context.Background()
	srv, err := devserver.New(devserver.Options{Dir: cfg.StateDir(), FrontendPort: -1, UIPort: -1})
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	t.Cleanup(func() { _ = srv.Stop(ctx) })
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress()})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	env := worker.Env{AgentCommand: testsuite.AgentCommand()}
	w := worker.New(c, queue, env)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	t.Cleanup(func() {
		b, err := worker.Open(ctx, cfg, env)
		if err != nil {
			return
		}
		defer b.Close()
		nodes, _ := b.VM.List(ctx)
		for _, n := range nodes {
			_ = b.VM.Destroy(ctx, n)
		}
	})
	return c, env
}

func writeHistory(t *testing.T, c client.Client, id, runID, path string) {
	t.Helper()
	var h historypb.History
	it := c.GetWorkflowHistory(context.Background(), id, runID, false, 0)
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, e)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&h)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// TestDeployOnARealServer runs the deploy workflows on the embedded Temporal
// with every real backend (local nodes, embedded store, the cabal reader and
// builder on examples/hello) and records their histories for the replay test.
func TestDeployOnARealServer(t *testing.T) {
	testsuite.RequireCabal(t)
	ctx := context.Background()
	project := testsuite.HelloRepo(t, testsuite.Example(t, "hello"))
	cfg := deploy.Default(project)
	cfg.Name, cfg.Package = "dtest", "hello.cabal"
	cfg.App.Port = 18000 + os.Getpid()%1000
	cfg.App.DrainTimeout = deploy.Duration(2 * time.Second)
	buildEnv := []string{"CABAL_DIR=" + testsuite.CabalDir(t)}
	require.NoError(t, worker.RecordConfig(ctx, &cfg))
	c, _ := controlPlane(t, cfg, "dtest")
	exec := func(name string, wf any, req any, res any) {
		t.Helper()
		r, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "dtest-" + name, TaskQueue: "dtest"}, wf, req)
		require.NoError(t, err)
		require.NoError(t, r.Get(ctx, res))
		if *record {
			writeHistory(t, c, r.GetID(), r.GetRunID(), filepath.Join("..", "workflows", "testdata", name+".json"))
		}
	}
	var pres workflows.ProvisionResult
	exec("deploy-setup", workflows.Provision, workflows.ProvisionRequest{Config: cfg, Op: workflows.OpSet, Count: 2}, &pres)

	var t1 deploy.Target
	exec("build", workflows.Build, workflows.BuildRequest{Config: cfg, BuildEnv: buildEnv}, &t1)
	require.Equal(t, testsuite.Git(t, project, "rev-parse", "HEAD"), t1.Version)
	var res workflows.DeployResult
	exec("deploy", workflows.Deploy, workflows.DeployRequest{Config: cfg, Kind: deploy.ReleaseDeploy, BuildEnv: buildEnv, Who: "test"}, &res)
	require.Equal(t, t1.Digest, res.Release.Digest, "the same commit builds to the same digest")
	var cres workflows.CopyResult
	exec("copy", workflows.Copy, workflows.CopyRequest{Config: cfg}, &cres)
	for _, n := range cres.Nodes {
		require.Zero(t, n.Sent)
	}

	testsuite.ChangeHello(t, project, 2)
	exec("deploy-2", workflows.Deploy, workflows.DeployRequest{Config: cfg, Kind: deploy.ReleaseDeploy, BuildEnv: buildEnv, Who: "test"}, &res)
	require.Equal(t, testsuite.Git(t, project, "rev-parse", "HEAD"), res.Release.Version)
	exec("rollback", workflows.Deploy, workflows.DeployRequest{Config: cfg, Kind: deploy.ReleaseRollback, Who: "test"}, &res)
	require.Equal(t, t1.Version, res.Release.Version)
	// set 3: the new node is brought to the current release (the rollback's
	// target) before set ends.
	exec("provision-converge", workflows.Provision, workflows.ProvisionRequest{Config: cfg, Op: workflows.OpSet, Count: 3}, &pres)
	require.Len(t, pres.Created, 1)
	require.Equal(t, t1.Version, pres.Version)
	require.Len(t, pres.Provisioned, 1)
	require.Equal(t, t1.Version, pres.Provisioned[0].Version)
	require.NotEmpty(t, pres.Provisioned[0].Serving)
	var stopped []workflows.StoppedOn
	exec("stop", workflows.Stop, workflows.StopRequest{Config: cfg}, &stopped)
	require.Len(t, stopped, 3)
	for _, s := range stopped {
		require.Len(t, s.Stopped, 1)
	}
}

// TestHealOnARealServer runs repair, repair --watch, chaos-monkey (once
// and --rampage), gc and a scheduled run on the embedded Temporal with the
// local backend, checks that the watchers stand aside while the cluster
// lock is held, and records the histories for the replay test.
func TestHealOnARealServer(t *testing.T) {
	ctx := context.Background()
	cfg := deploy.Default(t.TempDir())
	cfg.Name = "htest"
	require.NoError(t, worker.RecordConfig(ctx, &cfg))
	c, env := controlPlane(t, cfg, "htest")
	exec := func(name, id string, wf any, req any, res any) {
		t.Helper()
		if id == "" {
			id = "htest-" + name
		}
		r, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "htest"}, wf, req)
		require.NoError(t, err)
		require.NoError(t, r.Get(ctx, res))
		if *record {
			writeHistory(t, c, r.GetID(), r.GetRunID(), filepath.Join("..", "workflows", "testdata", name+".json"))
		}
	}
	nodes := func() []deploy.Node { // the live ones
		b, err := worker.Open(ctx, cfg, env)
		require.NoError(t, err)
		defer b.Close()
		live, err := b.VM.List(ctx)
		require.NoError(t, err)
		return live
	}
	vanish := func(i int) {
		b, err := worker.Open(ctx, cfg, env)
		require.NoError(t, err)
		defer b.Close()
		for _, n := range nodes() {
			if n.Index == i {
				require.NoError(t, b.VM.Destroy(ctx, n))
			}
		}
	}
	var pres workflows.ProvisionResult
	exec("heal-setup", "", workflows.Provision, workflows.ProvisionRequest{Config: cfg, Op: workflows.OpSet, Count: 3}, &pres)

	vanish(1)
	var rr workflows.RepairResult
	exec("repair", "", workflows.Repair, workflows.RepairRequest{Config: cfg, Who: "test"}, &rr)
	require.Equal(t, []int{1}, rr.Plan.Create)
	require.True(t, rr.Whole)
	require.Len(t, nodes(), 3)

	// A watcher that runs under the lock's own ID cannot start its child:
	// it stands aside, as it does while a deploy holds the lock.
	vanish(2)
	var wr workflows.WatchResult
	exec("repair-watch-aside", workflows.LockID(cfg), workflows.RepairWatch, workflows.RepairWatchRequest{Config: cfg, Interval: 100 * time.Millisecond, MaxRounds: 2}, &wr)
	require.Equal(t, workflows.WatchResult{Rounds: 2, Skipped: 2}, wr)
	require.Len(t, nodes(), 2)
	exec("repair-watch", "", workflows.RepairWatch, workflows.RepairWatchRequest{Config: cfg, Interval: 100 * time.Millisecond, MaxRounds: 2}, &wr)
	require.Equal(t, workflows.WatchResult{Rounds: 2, Repairs: 1}, wr)
	require.Len(t, nodes(), 3)

	// verify --watch holds no lock and changes nothing: two rounds over
	// the three nodes, every verdict in the store.
	since := time.Now().UTC()
	exec("verify-watch", "", workflows.VerifyWatch, workflows.VerifyRequest{Config: cfg, Index: -1, Interval: 100 * time.Millisecond, MaxRounds: 2}, nil)
	b, err := worker.Open(ctx, cfg, env)
	require.NoError(t, err)
	st, err := b.Store.Load(ctx)
	b.Close()
	require.NoError(t, err)
	verdicts := 0
	for _, v := range st.Health {
		if !v.At.Before(since) {
			verdicts++
		}
	}
	require.Equal(t, 6, verdicts, "two rounds over three nodes")
	require.Len(t, nodes(), 3)

	var cr workflows.ChaosResult
	exec("chaos-dry-run", "", workflows.Chaos, workflows.ChaosRequest{Config: cfg, MinHealthy: -1, DryRun: true}, &cr)
	require.NotNil(t, cr.Victim)
	require.Len(t, nodes(), 3)
	var ramp workflows.RampageResult
	exec("chaos-rampage", "", workflows.ChaosRampage, workflows.RampageRequest{Chaos: workflows.ChaosRequest{Config: cfg, MinHealthy: -1}, Interval: 100 * time.Millisecond, MaxRounds: 2}, &ramp)
	require.Equal(t, workflows.RampageResult{Rounds: 2, Kills: 1, Skipped: 1}, ramp)
	require.Len(t, nodes(), 2)
	exec("repair-after-chaos", "", workflows.Repair, workflows.RepairRequest{Config: cfg, Who: "test"}, &rr)
	require.Equal(t, 1, rr.Recovered, "the kill is marked recovered")
	exec("chaos", "", workflows.Chaos, workflows.ChaosRequest{Config: cfg, Seed: 42, MinHealthy: -1}, &cr)
	require.True(t, cr.Killed)

	var gres workflows.GCResult
	exec("gc", "", workflows.GC, workflows.GCRequest{Config: cfg, Count: 3}, &gres)
	require.Empty(t, gres.Plan.Remove)
	var sres workflows.ScheduledResult
	exec("scheduled-gc", "", workflows.Scheduled, workflows.ScheduledRequest{Op: workflows.ScheduledGC, GC: &workflows.GCRequest{Config: cfg, Older: "7d"}}, &sres)
	require.NotNil(t, sres.GC)
	require.Empty(t, sres.Skipped)
}

// TestClusterLockInEtcd: with the etcd store, every mutating workflow holds
// the cluster lock as an etcd lease for as long as it runs, so operators
// that share the etcd but not a Temporal exclude each other; the lock is
// free again when the workflow ends.
func TestClusterLockInEtcd(t *testing.T) {
	ctx := context.Background()
	ep := testsuite.StartEtcd(t)
	cfg := deploy.Default(t.TempDir())
	cfg.Name, cfg.Backends.Store = "locktest", "etcd://"+ep
	require.NoError(t, worker.RecordConfig(ctx, &cfg))
	c, _ := controlPlane(t, cfg, "ltest")
	other, err := etcdstore.Open(ctx, cfg.Backends.Store, cfg.Name)
	require.NoError(t, err)
	defer other.Close()
	set := func(id string, n int) error {
		r, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "ltest"}, workflows.Provision,
			workflows.ProvisionRequest{Config: cfg, Op: workflows.OpSet, Count: n})
		require.NoError(t, err)
		return r.Get(ctx, nil)
	}

	unlock, err := other.Lock(ctx, "deploy by alice@elsewhere", 5*time.Second)
	require.NoError(t, err)
	err = set("lock-1", 1)
	require.ErrorContains(t, err, `locked by "deploy by alice@elsewhere"`)
	st, err := other.Load(ctx)
	require.NoError(t, err)
	require.Zero(t, st.Count, "a refused workflow changes nothing")
	require.NoError(t, unlock())

	require.NoError(t, set("lock-2", 1))
	// The workflow released it: another holder gets it at once.
	unlock, err = other.Lock(ctx, "bob", 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, unlock())
	require.NoError(t, set("lock-3", 0))
}
