package activities_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/vm/local"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/distributive-flow/dflow/workflows"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/log"
	sdktest "go.temporal.io/sdk/testsuite"
	"golang.org/x/crypto/ssh"
)

// TestMain doubles as the node agent of the local nodes made here.
func TestMain(m *testing.M) {
	testsuite.ServeAgentIfAsked()
	os.Exit(m.Run())
}

func TestSweepRemains(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		recorded  []int // nodes made and recorded in the store
		halfMade  []int // nodes made, dead, and not recorded (a create cut short)
		from      int
		wantSwept []int
		wantLeft  []int // what the backend still holds
	}{
		{name: "set 0 sweeps every half-made node", halfMade: []int{0, 3}, from: 0, wantSwept: []int{0, 3}, wantLeft: []int{}},
		{name: "below the count is left to create", halfMade: []int{1, 4}, from: 2, wantSwept: []int{4}, wantLeft: []int{1}},
		{name: "recorded nodes are the plan's", recorded: []int{0, 2}, halfMade: []int{3}, from: 0, wantSwept: []int{3}, wantLeft: []int{0, 2}},
		{name: "nothing to sweep", recorded: []int{0}, from: 1, wantLeft: []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm, store := testsuite.NewFakeVM(), testsuite.NewMemStore()
			for _, i := range tt.recorded {
				n, err := vm.Create(ctx, deploy.NodeSpec{Index: i})
				require.NoError(t, err)
				_, err = store.Add(ctx, n)
				require.NoError(t, err)
			}
			for _, i := range tt.halfMade {
				_, err := vm.Create(ctx, deploy.NodeSpec{Index: i})
				require.NoError(t, err)
				vm.Kill(i)
			}
			swept, err := activities.SweepRemains(ctx, &activities.Backends{VM: vm, Store: store}, tt.from)
			require.NoError(t, err)
			require.Equal(t, tt.wantSwept, swept)
			left, err := vm.Remains(ctx)
			require.NoError(t, err)
			require.Equal(t, tt.wantLeft, left)
		})
	}
}

// TestSetZeroRemovesHalfMadeNodes runs `set 0` (the Provision workflow with
// the real activities) on local nodes: a recorded node, and a half-made one
// that no List reports and the store does not know (its create was cut
// short by a crash: its directory is there, its agent is not). Nothing is
// left of either.
func TestSetZeroRemovesHalfMadeNodes(t *testing.T) {
	ctx := context.Background()
	project := t.TempDir()
	state := filepath.Join(project, ".dflow")
	require.NoError(t, os.MkdirAll(state, 0o755))
	signer := testsuite.NewSigner(t)
	keys := string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
	vm, err := local.New(local.Options{
		StateDir: state, Project: project, AgentPort: 17077, Command: testsuite.AgentCommand(), Signer: signer,
		MachineDir: filepath.Join(os.TempDir(), "dflow-local-test-registry"),
	})
	require.NoError(t, err)
	store := testsuite.NewMemStore()
	t.Cleanup(func() {
		for i := 0; i < 3; i++ {
			_ = vm.Destroy(context.Background(), deploy.Node{Index: i})
		}
	})

	n0, err := vm.Create(ctx, deploy.NodeSpec{Index: 0, Keys: keys})
	require.NoError(t, err)
	_, err = store.Add(ctx, n0)
	require.NoError(t, err)
	half, err := vm.Create(ctx, deploy.NodeSpec{Index: 2, Keys: keys})
	require.NoError(t, err)
	testsuite.KillAgent(t, filepath.Join(state, "nodes", strconv.Itoa(half.Index)))
	live, err := vm.List(ctx)
	require.NoError(t, err)
	require.Len(t, live, 1, "the half-made node is not listed: no plan sees it")

	acts := &activities.Activities{Open: func(ctx context.Context, cfg deploy.Config) (*activities.Backends, error) {
		return &activities.Backends{VM: vm, Store: store, Keys: keys, Signer: signer}, nil
	}}
	var s sdktest.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.SetTestTimeout(time.Minute)
	workflows.Register(env)
	env.RegisterActivity(acts)
	cfg := deploy.Default(project)
	require.NoError(t, backends.Update(ctx, store, func(st *deploy.State) bool {
		cfg.Revision = st.PutConfig(cfg, time.Now())
		return true
	}))
	env.ExecuteWorkflow(workflows.Provision, workflows.ProvisionRequest{Config: cfg, Op: workflows.OpSet, Count: 0})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())

	left, err := vm.Remains(ctx)
	require.NoError(t, err)
	require.Equal(t, []int{}, left, "set 0 leaves nothing, the half-made node included")
	st, err := store.Load(ctx)
	require.NoError(t, err)
	require.Empty(t, st.Nodes)
}
