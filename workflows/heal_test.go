package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/agent"
	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/container/process"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/workflows"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/crypto/ssh"
)

// agentVM is a VM backend whose nodes are real in-process agents, each on
// its own loopback address (the same address for an index every time), so
// repair and chaos-monkey can destroy and create them.
type agentVM struct {
	t      *testing.T
	base   string
	signer ssh.Signer
	mu     sync.Mutex
	gen    int
	nodes  map[int]*vmNode
}

type vmNode struct {
	node deploy.Node
	dir  string
	a    *agent.Agent
}

var _ backends.VMBackend = (*agentVM)(nil)

func newAgentVM(t *testing.T, signer ssh.Signer) *agentVM {
	vm := &agentVM{t: t, signer: signer, nodes: map[int]*vmNode{},
		base: fmt.Sprintf("127.%d.%d.", 100+os.Getpid()%100, time.Now().UnixNano()%200+1)}
	t.Cleanup(func() {
		vm.mu.Lock()
		defer vm.mu.Unlock()
		for _, n := range vm.nodes {
			stopAgent(n.a)
		}
	})
	return vm
}

func stopAgent(a *agent.Agent) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = a.Stop(ctx)
}

func (vm *agentVM) Create(ctx context.Context, s deploy.NodeSpec) (deploy.Node, error) {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if n, ok := vm.nodes[s.Index]; ok {
		return n.node, nil
	}
	vm.gen++
	dir := vm.t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(vm.signer.PublicKey()), 0o600); err != nil {
		return deploy.Node{}, err
	}
	addr := vm.base + fmt.Sprint(s.Index+1)
	id := fmt.Sprintf("n%d-%d", s.Index, vm.gen)
	a, err := agent.New(agent.Options{Dir: dir, Listen: addr + ":0", Index: s.Index, NodeID: id, Version: "test", Log: log.New(io.Discard, "", 0)})
	if err != nil {
		return deploy.Node{}, err
	}
	if err := a.Start(ctx); err != nil {
		return deploy.Node{}, err
	}
	n := deploy.Node{Index: s.Index, ID: id, Address: addr, AgentURL: "http://" + a.Addr(), Backend: "agentvm"}
	vm.nodes[s.Index] = &vmNode{node: n, dir: dir, a: a}
	return n, nil
}

func (vm *agentVM) Destroy(ctx context.Context, n deploy.Node) error {
	vm.mu.Lock()
	cur, ok := vm.nodes[n.Index]
	if !ok || n.ID != "" && cur.node.ID != n.ID {
		vm.mu.Unlock()
		return nil
	}
	delete(vm.nodes, n.Index)
	vm.mu.Unlock()
	stopAgent(cur.a)
	return nil
}

func (vm *agentVM) List(ctx context.Context) ([]deploy.Node, error) {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	var out []deploy.Node
	for _, n := range vm.nodes {
		out = append(out, n.node)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Index < out[b].Index })
	return out, nil
}

// kill stops node i's agent (and its apps) but leaves the node listed: a
// machine whose agent died.
func (vm *agentVM) kill(i int) {
	vm.mu.Lock()
	n := vm.nodes[i]
	vm.mu.Unlock()
	stopAgent(n.a)
}

// vanish removes node i without telling the store: a machine that is gone.
func (vm *agentVM) vanish(i int) {
	vm.mu.Lock()
	n := vm.nodes[i]
	delete(vm.nodes, i)
	vm.mu.Unlock()
	stopAgent(n.a)
}

func (vm *agentVM) dir(i int) string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.nodes[i].dir
}

// healFleet is a fleet whose nodes come and go through an agentVM.
type healFleet struct {
	*fleet
	vm *agentVM
}

func newHealFleet(t *testing.T, count int) *healFleet {
	t.Helper()
	f := &healFleet{fleet: newFleet(t, 0)}
	f.vm = newAgentVM(t, f.signer)
	f.cfg.Name = "heal"
	f.cfg.Verify.Timeout = deploy.Duration(2 * time.Second)
	var res workflows.ProvisionResult
	require.NoError(t, f.exec(t, "", workflows.Provision, workflows.ProvisionRequest{Config: f.cfg, Op: workflows.OpSet, Count: count}, &res))
	require.Len(t, res.Created, count)
	return f
}

func (f *healFleet) acts() *activities.Activities {
	return &activities.Activities{Open: func(ctx context.Context, cfg deploy.Config) (*activities.Backends, error) {
		ctr, err := process.New(process.Options{Signer: f.signer})
		if err != nil {
			return nil, err
		}
		return &activities.Backends{VM: f.vm, Store: f.store, Reader: fakeReader{}, Builder: f.builder, Container: ctr,
			Artifacts: f.arts, Signer: f.signer, Keys: string(ssh.MarshalAuthorizedKey(f.signer.PublicKey()))}, nil
	}}
}

// exec runs wf in the SDK's test environment (with every dflow workflow
// registered, for the children) under workflow ID id ("" : a fresh one).
func (f *healFleet) exec(t *testing.T, id string, wf any, arg any, result any) error {
	t.Helper()
	env := newEnv(f.acts())
	env.SetTestTimeout(3 * time.Minute)
	f.runs++
	if id == "" {
		id = fmt.Sprintf("heal-test-%d", f.runs)
	}
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: id})
	env.ExecuteWorkflow(wf, f.saved(t, arg))
	return outcome(t, env, result)
}

func (f *healFleet) deploy(t *testing.T, version string) workflows.DeployResult {
	t.Helper()
	f.builder.version = version
	var res workflows.DeployResult
	require.NoError(t, f.exec(t, "", workflows.Deploy, workflows.DeployRequest{Config: f.cfg, Kind: deploy.ReleaseDeploy, Who: "test"}, &res))
	return res
}

func (f *healFleet) repair(t *testing.T) workflows.RepairResult {
	t.Helper()
	var res workflows.RepairResult
	require.NoError(t, f.exec(t, "", workflows.Repair, workflows.RepairRequest{Config: f.cfg, Who: "test"}, &res))
	return res
}

// serving asks every recorded node's public port which version answers.
func (f *healFleet) serving(t *testing.T) []string {
	t.Helper()
	f.fleet.nodes = f.state(t).Nodes
	return f.fleet.serving(t)
}

func (f *healFleet) ids(t *testing.T) map[int]string {
	out := map[int]string{}
	for _, n := range f.state(t).Nodes {
		out[n.Index] = n.ID
	}
	return out
}

func (f *healFleet) processes(t *testing.T, i int) api.ProcessList {
	n, ok := f.state(t).Node(i)
	require.True(t, ok)
	l, err := api.NewClient(n.AgentURL, n.ID, f.signer).Processes(context.Background())
	require.NoError(t, err)
	return l
}

// corrupt flips a byte of the serving executable on node i's disk.
func (f *healFleet) corrupt(t *testing.T, i int) {
	l := f.processes(t, i)
	var digest string
	for _, p := range l.Processes {
		if p.ID == l.Serving {
			digest = p.Digest
		}
	}
	exe := filepath.Join(f.vm.dir(i), "releases", digest, "bin", "app")
	b, err := os.ReadFile(exe)
	require.NoError(t, err)
	b[len(b)/2] ^= 0xff
	require.NoError(t, os.WriteFile(exe+".new", b, 0o755))
	require.NoError(t, os.Rename(exe+".new", exe))
}

// killServing kills node i's serving process behind the agent's back.
func (f *healFleet) killServing(t *testing.T, i int) {
	l := f.processes(t, i)
	for _, p := range l.Processes {
		if p.ID == l.Serving {
			require.NoError(t, syscall.Kill(p.PID, syscall.SIGKILL))
		}
	}
	require.Eventually(t, func() bool {
		l := f.processes(t, i)
		for _, p := range l.Processes {
			if p.ID == l.Serving {
				return !p.Alive()
			}
		}
		return false
	}, 10*time.Second, 50*time.Millisecond)
}

func reasons(p deploy.RepairPlan) map[int]string {
	out := map[int]string{}
	for _, a := range p.Destroy {
		out[a.Index] = a.Reason
	}
	return out
}

func TestRepairReplacesBrokenAndMissingNodes(t *testing.T) {
	f := newHealFleet(t, 4)
	f.deploy(t, "v1")
	f.deploy(t, "v2")
	require.Equal(t, all("v2", 4), f.serving(t))

	res := f.repair(t)
	require.True(t, res.Plan.Empty(), "a healthy cluster needs nothing: %+v", res.Plan)
	require.True(t, res.Whole)

	before := f.ids(t)
	f.vm.vanish(0)      // the machine is gone
	f.vm.kill(1)        // its agent died
	f.corrupt(t, 2)     // its executable rotted
	f.killServing(t, 3) // its app died
	st := f.state(t)    // and the desired count grew by one
	st.Count = 5
	require.NoError(t, f.store.Save(context.Background(), st))

	res = f.repair(t)
	why := reasons(res.Plan)
	require.Equal(t, "recorded but gone", why[0])
	require.Contains(t, why[1], "its agent does not answer")
	require.Contains(t, why[2], "not the one that was built")
	require.Contains(t, why[3], "died")
	require.Equal(t, []int{0, 1, 2, 3, 4}, res.Plan.Create)
	require.Equal(t, []int{0, 1, 2, 3, 4}, res.Plan.Provision)
	// The nodes that served nothing anyway first, then the one that still
	// served (its executable rotted), alone: repair.max_unavailable 1.
	require.Equal(t, [][]int{{0, 1, 3, 4}, {2}}, res.Plan.Batches)
	require.True(t, res.Whole)
	require.Equal(t, "v2", res.Version)
	require.Equal(t, all("v2", 5), f.serving(t))
	after := f.ids(t)
	for i := 0; i < 4; i++ {
		require.NotEqual(t, before[i], after[i], "node %d is a fresh incarnation", i)
	}
	require.NotEmpty(t, after[4])

	// The repair is recorded; rollback still goes to v1 on every node.
	st = f.state(t)
	require.Len(t, st.Repairs, 1)
	require.True(t, st.Repairs[0].Whole)
	require.Equal(t, []int{0, 1, 2, 3, 4}, st.Repairs[0].Provisioned)
	var rb workflows.DeployResult
	require.NoError(t, f.exec(t, "", workflows.Deploy, workflows.DeployRequest{Config: f.cfg, Kind: deploy.ReleaseRollback, Who: "test"}, &rb))
	require.Equal(t, all("v1", 5), f.serving(t))

	res = f.repair(t)
	require.True(t, res.Plan.Empty())
}

// A release that dies on every node is a version fault: repair destroys
// nothing and fails saying so; repair --watch reports it once and, with
// repair.rollback_on_version_fault, rolls back once.
func TestRepairVersionFault(t *testing.T) {
	f := newHealFleet(t, 3)
	f.deploy(t, "v1")
	f.deploy(t, "v2")
	before := f.ids(t)
	for i := range 3 {
		f.killServing(t, i)
	}
	var res workflows.RepairResult
	err := f.exec(t, "", workflows.Repair, workflows.RepairRequest{Config: f.cfg, Who: "test"}, &res)
	require.Error(t, err)
	var app *temporal.ApplicationError
	require.True(t, errors.As(err, &app))
	require.Equal(t, workflows.ErrVersionFault, app.Type())
	require.Contains(t, app.Message(), "release 2 (version v2) is unhealthy on 3 of 3 nodes")
	require.Contains(t, app.Message(), "roll back (dflow rollback)")
	require.Equal(t, before, f.ids(t), "no node was destroyed")
	st := f.state(t)
	require.Len(t, st.Repairs, 1)
	require.Contains(t, st.Repairs[0].Error, "unhealthy on 3 of 3 nodes")

	// The watch without rollback_on_version_fault: reports, destroys nothing.
	var wr workflows.WatchResult
	require.NoError(t, f.exec(t, "", workflows.RepairWatch, workflows.RepairWatchRequest{Config: f.cfg, Interval: time.Second, MaxRounds: 2}, &wr))
	require.Equal(t, workflows.WatchResult{Rounds: 2, Faults: 2}, wr)
	require.Equal(t, before, f.ids(t))
	require.Len(t, f.state(t).Repairs, 2, "a fault is recorded once per watch and release")

	// With it: one rollback, to v1, and the cluster is healthy again.
	f.cfg.Repair.RollbackOnVersionFault = true
	require.NoError(t, f.exec(t, "", workflows.RepairWatch, workflows.RepairWatchRequest{Config: f.cfg, Interval: time.Second, MaxRounds: 2}, &wr))
	require.Equal(t, workflows.WatchResult{Rounds: 2, Faults: 1}, wr)
	require.Equal(t, all("v1", 3), f.serving(t))
	rels := f.state(t).Releases
	require.Equal(t, deploy.ReleaseRollback, rels[len(rels)-1].Kind)
	require.Equal(t, "v1", rels[len(rels)-1].Version)
}

func TestRepairOfAClusterWithNothingDeployed(t *testing.T) {
	f := newHealFleet(t, 2)
	f.vm.vanish(1)
	res := f.repair(t)
	require.Equal(t, []int{1}, res.Plan.Create)
	require.Empty(t, res.Plan.Provision)
	require.True(t, res.Whole)
	require.Len(t, f.state(t).Nodes, 2)
}

// verify --watch on one node: a verdict per round for that node only, in
// the store, and the loop ends after MaxRounds.
func TestVerifyWatch(t *testing.T) {
	f := newHealFleet(t, 3)
	f.deploy(t, "v1")
	require.NoError(t, f.exec(t, "", workflows.VerifyWatch, workflows.VerifyRequest{Config: f.cfg, Index: 1, Interval: time.Minute, MaxRounds: 3}, nil))
	var seen []int
	for _, v := range f.state(t).Health {
		require.True(t, v.Healthy(), "node %d: %s", v.Index, v.Detail)
		seen = append(seen, v.Index)
	}
	require.Equal(t, []int{1, 1, 1}, seen)
}

func TestChaosAndRepairWatch(t *testing.T) {
	f := newHealFleet(t, 3)
	f.deploy(t, "v1")

	// Dry run: names a victim, touches nothing.
	var cr workflows.ChaosResult
	require.NoError(t, f.exec(t, "", workflows.Chaos, workflows.ChaosRequest{Config: f.cfg, Seed: 7, MinHealthy: -1, DryRun: true}, &cr))
	require.NotNil(t, cr.Victim)
	require.False(t, cr.Killed)
	require.Len(t, f.state(t).Nodes, 3)
	require.Empty(t, f.state(t).Chaos)

	// The same seed picks the same victim, for real this time.
	victim := *cr.Victim
	require.NoError(t, f.exec(t, "", workflows.Chaos, workflows.ChaosRequest{Config: f.cfg, Seed: 7, MinHealthy: -1}, &cr))
	require.True(t, cr.Killed)
	require.Equal(t, victim, *cr.Victim)
	require.Equal(t, 2, cr.MinHealthy, "default: count-1")
	require.Len(t, f.state(t).Nodes, 2)
	st := f.state(t)
	require.Len(t, st.Chaos, 1)
	require.Equal(t, victim, st.Chaos[0].Index)
	require.True(t, st.Chaos[0].RecoveredAt.IsZero())

	// The guardrail: with one node down, another kill would leave 1 < 2.
	require.NoError(t, f.exec(t, "", workflows.Chaos, workflows.ChaosRequest{Config: f.cfg, MinHealthy: -1}, &cr))
	require.False(t, cr.Killed)
	require.Contains(t, cr.Skipped, "fewer than --min-healthy 2")
	// Asking for less does not go below repair.max_unavailable (1 of 3).
	require.NoError(t, f.exec(t, "", workflows.Chaos, workflows.ChaosRequest{Config: f.cfg, MinHealthy: 0}, &cr))
	require.False(t, cr.Killed)
	require.Contains(t, cr.Skipped, "fewer than --min-healthy 2 (repair.max_unavailable 1 of 3 nodes)")

	// A rampage of two rounds: the first round is refused by the guardrail too.
	var rr workflows.RampageResult
	require.NoError(t, f.exec(t, "", workflows.ChaosRampage, workflows.RampageRequest{
		Chaos: workflows.ChaosRequest{Config: f.cfg, MinHealthy: -1}, Interval: time.Second, MaxRounds: 2}, &rr))
	require.Equal(t, workflows.RampageResult{Rounds: 2, Skipped: 2}, rr)

	// repair --watch brings the node back and records the recovery.
	var wr workflows.WatchResult
	require.NoError(t, f.exec(t, "", workflows.RepairWatch, workflows.RepairWatchRequest{Config: f.cfg, Interval: time.Second, MaxRounds: 3}, &wr))
	require.Equal(t, workflows.WatchResult{Rounds: 3, Repairs: 1}, wr)
	require.Equal(t, all("v1", 3), f.serving(t))
	st = f.state(t)
	require.False(t, st.Chaos[0].RecoveredAt.IsZero(), "the kill is marked recovered")
	require.Greater(t, st.Chaos[0].RecoverySeconds, 0.0)

	// Now the cluster is whole, a rampage kills (first round) and then
	// stands by the guardrail (second round).
	require.NoError(t, f.exec(t, "", workflows.ChaosRampage, workflows.RampageRequest{
		Chaos: workflows.ChaosRequest{Config: f.cfg, Seed: 3, MinHealthy: -1}, Interval: time.Second, MaxRounds: 2}, &rr))
	require.Equal(t, workflows.RampageResult{Rounds: 2, Kills: 1, Skipped: 1}, rr)
	require.Len(t, f.state(t).Chaos, 2)
}

// held lists the digests node i's agent holds.
func (f *healFleet) held(t *testing.T, i int) []string {
	n, ok := f.state(t).Node(i)
	require.True(t, ok)
	arts, err := api.NewClient(n.AgentURL, n.ID, f.signer).Artifacts(context.Background())
	require.NoError(t, err)
	var out []string
	for _, a := range arts {
		out = append(out, a.Digest)
	}
	sort.Strings(out)
	return out
}

func TestGCKeepsTheNewestAndTheRollbackTargets(t *testing.T) {
	f := newHealFleet(t, 3)
	digests := map[string]string{}
	for i := 1; i <= 7; i++ {
		v := fmt.Sprint("v", i)
		digests[v] = f.deploy(t, v).Release.Digest
	}
	want := []string{digests["v5"], digests["v6"], digests["v7"]}
	sort.Strings(want)
	for i := 0; i < 3; i++ {
		require.Len(t, f.held(t, i), 7)
	}

	// A dry run says what would go and which rollbacks would be lost.
	var res workflows.GCResult
	require.NoError(t, f.exec(t, "", workflows.GC, workflows.GCRequest{Config: f.cfg, Count: 3, DryRun: true}, &res))
	require.Len(t, res.Plan.Remove, 4)
	require.Len(t, res.Plan.LostRollbacks, 4)
	require.Equal(t, "v4", res.Plan.LostRollbacks[0].Version)
	require.Len(t, f.held(t, 0), 7, "a dry run removes nothing")

	require.NoError(t, f.exec(t, "", workflows.GC, workflows.GCRequest{Config: f.cfg, Count: 3}, &res))
	for i := 0; i < 3; i++ {
		require.Equal(t, want, f.held(t, i), "node %d keeps exactly v5, v6, v7", i)
	}
	blobs, err := f.arts.List()
	require.NoError(t, err)
	var stored []string
	for _, b := range blobs {
		stored = append(stored, b.Digest)
	}
	sort.Strings(stored)
	require.Equal(t, want, stored, "the artifact store keeps exactly v5, v6, v7")

	// Rollback still works within the kept window, and fails clearly beyond it.
	rollback := func() error {
		return f.exec(t, "", workflows.Deploy, workflows.DeployRequest{Config: f.cfg, Kind: deploy.ReleaseRollback, Who: "test"}, nil)
	}
	require.NoError(t, rollback())
	require.Equal(t, all("v6", 3), f.serving(t))
	require.NoError(t, rollback())
	require.Equal(t, all("v5", 3), f.serving(t))
	err = rollback()
	require.ErrorContains(t, err, "(version v4) is not in the control plane's artifact store")
	require.Equal(t, all("v5", 3), f.serving(t))

	// gc again: nothing runs from v7 now but it is among the 3 newest.
	require.NoError(t, f.exec(t, "", workflows.GC, workflows.GCRequest{Config: f.cfg, Count: 3}, &res))
	require.Empty(t, res.Plan.Remove)
	require.True(t, strings.HasPrefix(res.Plan.Keep[0].Version, "v"))

	err = f.exec(t, "", workflows.GC, workflows.GCRequest{Config: f.cfg}, nil)
	require.ErrorContains(t, err, "say what to keep")
	err = f.exec(t, "", workflows.GC, workflows.GCRequest{Config: f.cfg, Older: "soon"}, nil)
	require.ErrorContains(t, err, "--older")
}

func TestServingHelperSeesRecreatedNodes(t *testing.T) {
	// A guard for the helpers above: a recreated node answers on the same address.
	f := newHealFleet(t, 1)
	f.deploy(t, "a")
	addr := f.state(t).Nodes[0].Address
	f.vm.vanish(0)
	f.repair(t)
	require.Equal(t, addr, f.state(t).Nodes[0].Address)
	resp, err := http.Post(fmt.Sprintf("http://%s:%d/", addr, f.cfg.App.Port), "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
