package local_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// remains is what node index left in the project: its directory.
func remains(state string, index int) []string {
	dir := filepath.Join(state, "nodes", strconv.Itoa(index))
	if _, err := os.Stat(dir); err == nil {
		return []string{dir}
	}
	return nil
}

func killAgent(t *testing.T, state string, n deploy.Node) {
	testsuite.KillAgent(t, filepath.Join(state, "nodes", strconv.Itoa(n.Index)))
}

func TestConformance(t *testing.T) {
	testsuite.VMSuite(t, func(t *testing.T) testsuite.VMHarness {
		b, state, keys := open(t)
		return testsuite.VMHarness{
			Backend: b, Keys: keys, Kill: func(t *testing.T, n deploy.Node) { killAgent(t, state, n) },
			Remains: func(t *testing.T, index int) []string { return remains(state, index) },
			Images:  [2]string{"image-a", "image-b"},
		}
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

func TestFailedCreateGivesItsAddressBack(t *testing.T) {
	b, state, keys := open(t)
	project := filepath.Dir(state)
	claims := func() int {
		entries, _ := os.ReadDir(filepath.Join(machineDir, "loopback"))
		k := 0
		for _, e := range entries {
			raw, _ := os.ReadFile(filepath.Join(machineDir, "loopback", e.Name()))
			if strings.Contains(string(raw), strconv.Quote(project)) {
				k++
			}
		}
		return k
	}
	ctx := context.Background()
	_, err := b.Create(ctx, deploy.NodeSpec{Index: 0, Keys: "# no keys at all\n"})
	require.Error(t, err)
	require.Equal(t, 0, claims(), "the address the failed create claimed is given back")
	n, err := b.Create(ctx, deploy.NodeSpec{Index: 0, Keys: keys})
	require.NoError(t, err)
	require.Equal(t, 1, claims())
	// A node that existed keeps its address when bringing it back fails.
	killAgent(t, state, n)
	_, err = b.Create(ctx, deploy.NodeSpec{Index: 0, Keys: "# no keys at all\n"})
	require.Error(t, err)
	require.Equal(t, 1, claims(), "a claim the create found is kept")
}
