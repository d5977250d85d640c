package workflows_test

import (
	"context"
	"testing"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/distributive-flow/dflow/workflows"
	"github.com/stretchr/testify/require"
)

// cluster is a fake cluster: a fake VM backend and an in-memory store.
type cluster struct {
	vm    *testsuite.FakeVM
	store testsuite.MemStore
}

func newCluster() *cluster {
	return &cluster{vm: testsuite.NewFakeVM(), store: testsuite.NewMemStore()}
}

func (c *cluster) acts() *activities.Activities {
	return &activities.Activities{Open: func(ctx context.Context, cfg deploy.Config) (*activities.Backends, error) {
		return &activities.Backends{VM: c.vm, Store: c.store, Keys: "ssh-ed25519 AAAA test"}, nil
	}}
}

func (c *cluster) run(t *testing.T, req workflows.ProvisionRequest) (workflows.ProvisionResult, error) {
	t.Helper()
	env := newEnv(c.acts())
	req.Config = deploy.Default(t.TempDir())
	env.ExecuteWorkflow(workflows.Provision, saveConfigs(t, c.store, req))
	var res workflows.ProvisionResult
	err := outcome(t, env, &res)
	return res, err
}

func indices(nodes []deploy.Node) []int {
	out := []int{}
	for _, n := range nodes {
		out = append(out, n.Index)
	}
	return out
}

func (c *cluster) recorded(t *testing.T) []int {
	st, err := c.store.Load(context.Background())
	require.NoError(t, err)
	return indices(st.Nodes)
}

func (c *cluster) live(t *testing.T) []int {
	l, err := c.vm.List(context.Background())
	require.NoError(t, err)
	return indices(l)
}

func TestProvision(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, c *cluster)
		req     workflows.ProvisionRequest
		want    []int // recorded and live indices afterwards
		count   int   // desired count afterwards
		wantErr string
	}{
		{name: "set 3 from nothing", req: workflows.ProvisionRequest{Op: workflows.OpSet, Count: 3}, want: []int{0, 1, 2}, count: 3},
		{name: "set 0 from nothing", req: workflows.ProvisionRequest{Op: workflows.OpSet, Count: 0}, want: []int{}, count: 0},
		{
			name:  "set 1 from 3 keeps node 0",
			setup: func(t *testing.T, c *cluster) { c.run(t, workflows.ProvisionRequest{Op: workflows.OpSet, Count: 3}) },
			req:   workflows.ProvisionRequest{Op: workflows.OpSet, Count: 1}, want: []int{0}, count: 1,
		},
		{
			name: "set 3 brings back a dead node",
			setup: func(t *testing.T, c *cluster) {
				c.run(t, workflows.ProvisionRequest{Op: workflows.OpSet, Count: 3})
				c.vm.Kill(1)
			},
			req: workflows.ProvisionRequest{Op: workflows.OpSet, Count: 3}, want: []int{0, 1, 2}, count: 3,
		},
		{
			name: "set 2 destroys an orphan above the count and adopts one below",
			setup: func(t *testing.T, c *cluster) {
				c.vm.Plant(deploy.Node{Index: 5, ID: "orphan-5"})
				c.vm.Plant(deploy.Node{Index: 1, ID: "orphan-1"})
			},
			req: workflows.ProvisionRequest{Op: workflows.OpSet, Count: 2}, want: []int{0, 1}, count: 2,
		},
		{
			name:  "destroy 2 keeps the others and the count",
			setup: func(t *testing.T, c *cluster) { c.run(t, workflows.ProvisionRequest{Op: workflows.OpSet, Count: 3}) },
			req:   workflows.ProvisionRequest{Op: workflows.OpDestroy, Index: 2}, want: []int{0, 1}, count: 3,
		},
		{
			name:  "cycle 1",
			setup: func(t *testing.T, c *cluster) { c.run(t, workflows.ProvisionRequest{Op: workflows.OpSet, Count: 3}) },
			req:   workflows.ProvisionRequest{Op: workflows.OpCycle, Index: 1}, want: []int{0, 1, 2}, count: 3,
		},
		{
			name:  "destroy a missing node fails",
			setup: func(t *testing.T, c *cluster) { c.run(t, workflows.ProvisionRequest{Op: workflows.OpSet, Count: 1}) },
			req:   workflows.ProvisionRequest{Op: workflows.OpDestroy, Index: 4}, want: []int{0}, count: 1,
			wantErr: "no node at index 4",
		},
		{name: "unknown op fails", req: workflows.ProvisionRequest{Op: "explode"}, want: []int{}, wantErr: `unknown provision op "explode"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster()
			if tt.setup != nil {
				tt.setup(t, c)
			}
			_, err := c.run(t, tt.req)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tt.want, c.recorded(t), "recorded nodes")
			require.Equal(t, tt.want, c.live(t), "live nodes")
			st, _ := c.store.Load(context.Background())
			require.Equal(t, tt.count, st.Count)
		})
	}
}

func TestCycleMakesAFreshNodeAtTheSameIndex(t *testing.T) {
	c := newCluster()
	_, err := c.run(t, workflows.ProvisionRequest{Op: workflows.OpSet, Count: 2})
	require.NoError(t, err)
	before, _ := c.store.Load(context.Background())
	res, err := c.run(t, workflows.ProvisionRequest{Op: workflows.OpCycle, Index: 1})
	require.NoError(t, err)
	after, _ := c.store.Load(context.Background())
	old, _ := before.Node(1)
	cur, _ := after.Node(1)
	require.NotEqual(t, old.ID, cur.ID, "a fresh incarnation")
	require.Equal(t, old.Address, cur.Address)
	require.Len(t, res.Destroyed, 1)
	require.Len(t, res.Created, 1)
	unchanged, _ := after.Node(0)
	was, _ := before.Node(0)
	require.Equal(t, was, unchanged)
}
