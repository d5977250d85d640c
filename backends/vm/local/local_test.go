package local_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/distributive-flow/dflow/backends/vm/local"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// TestMain doubles as the node agent: the backend under test starts this
// test binary with DFLOW_TEST_AGENT=1 instead of `dflow agent`.
func TestMain(m *testing.M) {
	testsuite.ServeAgentIfAsked()
	os.Exit(m.Run())
}

func open(t *testing.T) (*local.Backend, string, string) {
	project := t.TempDir()
	state := filepath.Join(project, ".dflow")
	require.NoError(t, os.MkdirAll(state, 0o755))
	signer := testsuite.NewSigner(t)
	b, err := local.New(local.Options{
		StateDir:   state,
		Project:    project,
		AgentPort:  17077,
		Command:    testsuite.AgentCommand(),
		Signer:     signer,
		MachineDir: machineDir,
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		nodes, _ := b.List(context.Background())
		for _, n := range nodes {
			_ = b.Destroy(context.Background(), n)
		}
	})
	return b, state, string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
}

// machineDir is shared by every test here, as the real one is by every
// project on a machine; it lives in the temp dir so tests leave no trace.
var machineDir = filepath.Join(os.TempDir(), "dflow-local-test-registry")

func killAgent(t *testing.T, state string, n deploy.Node) {
	testsuite.KillAgent(t, filepath.Join(state, "nodes", strconv.Itoa(n.Index)))
}

func TestConformance(t *testing.T) {
	testsuite.VMSuite(t, func(t *testing.T) testsuite.VMHarness {
		b, state, keys := open(t)
		return testsuite.VMHarness{Backend: b, Keys: keys, Kill: func(t *testing.T, n deploy.Node) { killAgent(t, state, n) }}
	})
}

func TestProjectsNeverShareAddresses(t *testing.T) {
	ctx := context.Background()
	a, _, ka := open(t)
	b, _, kb := open(t)
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		for _, x := range []struct {
			be   *local.Backend
			keys string
		}{{a, ka}, {b, kb}} {
			n, err := x.be.Create(ctx, deploy.NodeSpec{Index: i, Keys: x.keys})
			require.NoError(t, err)
			require.False(t, seen[n.Address], "address %s handed out twice", n.Address)
			seen[n.Address] = true
		}
	}
}

func TestAgentThatCannotStartIsReported(t *testing.T) {
	b, _, _ := open(t)
	_, err := b.Create(context.Background(), deploy.NodeSpec{Index: 0, Keys: "# no keys at all\n"})
	require.ErrorContains(t, err, "holds no keys", "the agent's own error, from its log")
}
