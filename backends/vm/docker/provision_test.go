package docker_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/vm/docker"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/distributive-flow/dflow/workflows"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/log"
	sdktest "go.temporal.io/sdk/testsuite"
)

// TestFailedSetAndSetZeroLeaveNothing is issue 15's check on Docker, with
// the Provision workflow and the real activities: a `set 2` whose nodes'
// agents exit at once (their keys hold no key) fails and leaves no
// container and no node record; after a half-made node (a create cut short
// by a crash: its container is there, its agent is not), `set 0` leaves
// nothing with the cluster's label in `docker ps -a`, and no network.
func TestFailedSetAndSetZeroLeaveNothing(t *testing.T) {
	b, keys := open(t)
	cli := testsuite.Docker(t)
	ctx := context.Background()
	store := testsuite.NewMemStore()
	nodeKeys := "# no keys at all\n"
	acts := &activities.Activities{Open: func(ctx context.Context, cfg deploy.Config) (*activities.Backends, error) {
		return &activities.Backends{VM: b, Store: store, Keys: nodeKeys}, nil
	}}
	provision := func(count int) error {
		var s sdktest.WorkflowTestSuite
		s.SetLogger(log.NewStructuredLogger(slog.New(slog.DiscardHandler)))
		env := s.NewTestWorkflowEnvironment()
		env.SetTestTimeout(3 * time.Minute)
		workflows.Register(env)
		env.RegisterActivity(acts)
		cfg := deploy.Default(t.TempDir())
		require.NoError(t, backends.Update(ctx, store, func(st *deploy.State) bool {
			cfg.Revision = st.PutConfig(cfg, time.Now())
			return true
		}))
		env.ExecuteWorkflow(workflows.Provision, workflows.ProvisionRequest{Config: cfg, Op: workflows.OpSet, Count: count})
		require.True(t, env.IsWorkflowCompleted())
		return env.GetWorkflowError()
	}
	containers := func() []string {
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", docker.LabelCluster+"="+b.Cluster()))})
		require.NoError(t, err)
		var out []string
		for _, c := range cs {
			out = append(out, strings.Join(c.Names, ",")+" ("+c.State+")")
		}
		return out
	}

	err := provision(2)
	require.ErrorContains(t, err, "holds no keys")
	// The workflow fails with the first failed create; the other node's
	// create may still be failing (and removing its container) then.
	require.Eventually(t, func() bool { return len(containers()) == 0 }, time.Minute, 250*time.Millisecond,
		"the failed creates removed their containers: %v", containers())
	st, err := store.Load(ctx)
	require.NoError(t, err)
	require.Empty(t, st.Nodes, "and recorded no node")

	half, err := b.Create(ctx, deploy.NodeSpec{Index: 3, Keys: keys})
	require.NoError(t, err)
	kill(t, b, half)
	require.Len(t, containers(), 1)

	require.NoError(t, provision(0))
	require.Empty(t, containers(), "set 0 leaves nothing dflow made, the half-made node included")
	_, err = cli.NetworkInspect(ctx, b.NetworkName(), network.InspectOptions{})
	require.Error(t, err, "nor the network")
}
