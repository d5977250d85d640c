package plugin_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/distributive-flow/dflow/agent/api"
	"github.com/distributive-flow/dflow/backends"
	"github.com/distributive-flow/dflow/backends/plugin"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/testsuite"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

func repoRoot(t *testing.T) string {
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// firstIP is the example plugins' first node address, where their agents
// listen on the port the tests choose with testsuite.FreePort.
const firstIP = "127.0.0.100"

// vmHarness opens the VM plugin at path on a fresh project whose nodes run
// this test binary as their agent.
func vmHarness(t *testing.T, path string, port int) testsuite.VMHarness {
	project := t.TempDir()
	state := filepath.Join(project, ".dflow")
	require.NoError(t, os.MkdirAll(state, 0o755))
	p := open(t, path, plugin.KindVM, plugin.Env{Exe: testBinary(t), Project: project, StateDir: state, AgentPort: port})
	vm := p.VM()
	t.Cleanup(func() {
		nodes, _ := vm.List(context.Background())
		for _, n := range nodes {
			_ = vm.Destroy(context.Background(), n)
		}
	})
	signer := testsuite.NewSigner(t)
	return testsuite.VMHarness{
		Backend: vm,
		Keys:    string(ssh.MarshalAuthorizedKey(signer.PublicKey())),
		Kill: func(t *testing.T, n deploy.Node) {
			testsuite.KillAgent(t, filepath.Join(state, "plugin-nodes", strconv.Itoa(n.Index)))
		},
		Remains: func(t *testing.T, index int) []string {
			dir := filepath.Join(state, "plugin-nodes", strconv.Itoa(index))
			if _, err := os.Stat(dir); err == nil {
				return []string{dir}
			}
			return nil
		},
		CutShort: "a plugin whose create is cut short is killed: it cannot remove what it made",
		Images:   [2]string{"image-a", "image-b"},
	}
}

// TestShellVMPluginConformance runs the VM suite against
// examples/plugins/vm-local.sh.
func TestShellVMPluginConformance(t *testing.T) {
	path := filepath.Join(repoRoot(t), "examples", "plugins", "vm-local.sh")
	port := testsuite.FreePort(t, firstIP)
	testsuite.VMSuite(t, func(t *testing.T) testsuite.VMHarness { return vmHarness(t, path, port) })
}

func TestShellVMPluginNodesAnswerSignedRequests(t *testing.T) {
	signedRequests(t, filepath.Join(repoRoot(t), "examples", "plugins", "vm-local.sh"), "vm-local.sh")
}

// signedRequests checks what VMSuite does not: the node's agent accepts
// requests signed with the keys given to create, a node whose agent cannot
// start is reported with the agent's own words, and a bad index is refused.
func signedRequests(t *testing.T, path, name string) {
	project := t.TempDir()
	p := open(t, path, plugin.KindVM, plugin.Env{Exe: testBinary(t), Project: project, AgentPort: testsuite.FreePort(t, firstIP)})
	signer := testsuite.NewSigner(t)
	ctx := context.Background()
	n, err := p.VM().Create(ctx, deploy.NodeSpec{Index: 3, Image: `img "quoted"`, Keys: string(ssh.MarshalAuthorizedKey(signer.PublicKey()))})
	require.NoError(t, err)
	defer p.VM().Destroy(ctx, n)
	require.Equal(t, "127.0.0.103", n.Address)
	require.Equal(t, `img "quoted"`, n.Image)
	require.Equal(t, name, n.Backend)
	st, err := api.NewClient(n.AgentURL, n.ID, signer).Status(ctx)
	require.NoError(t, err)
	require.Equal(t, n.ID, st.NodeID)

	_, err = p.VM().Create(ctx, deploy.NodeSpec{Index: 1, Keys: "# no keys at all\n"})
	require.ErrorContains(t, err, "holds no keys", "the agent's own error, from its log")
	_, err = p.VM().Create(ctx, deploy.NodeSpec{Index: 200, Keys: "x"})
	require.ErrorContains(t, err, "index 200 out of range")
	require.True(t, plugin.Permanent(err))
}

// TestHaskellVMPluginConformance builds examples/plugins/vm-haskell with ghc
// and runs the VM suite against it.
func TestHaskellVMPluginConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPED: building the Haskell plugin takes a while (-short)")
	}
	ghc, err := exec.LookPath("ghc")
	if err != nil {
		t.Skip("SKIPPED LOUDLY: ghc is not installed; the Haskell VM plugin is untested")
	}
	src := filepath.Join(repoRoot(t), "examples", "plugins", "vm-haskell", "Main.hs")
	out := t.TempDir()
	bin := filepath.Join(out, "vm-haskell")
	b, err := exec.Command(ghc, "-O0", "-threaded", "-outputdir", out, "-o", bin, src).CombinedOutput()
	require.NoError(t, err, "ghc:\n%s", b)
	port := testsuite.FreePort(t, firstIP)
	testsuite.VMSuite(t, func(t *testing.T) testsuite.VMHarness { return vmHarness(t, bin, port) })
	t.Run("nodes answer signed requests", func(t *testing.T) { signedRequests(t, bin, "vm-haskell") })
}

// TestStorePluginConformance runs the store suite against a Go plugin: this
// test binary serving the embedded store through plugin.Serve, one process
// per call.
func TestStorePluginConformance(t *testing.T) {
	wrapper := filepath.Join(t.TempDir(), "store-plugin")
	require.NoError(t, os.WriteFile(wrapper, []byte("#!/bin/sh\nDFLOW_TEST_STORE_PLUGIN=1 exec '"+testBinary(t)+"' \"$@\"\n"), 0o755))
	var mu sync.Mutex
	envs := map[backends.Store]plugin.Env{}
	openEnv := func(t *testing.T, env plugin.Env) backends.Store {
		s := open(t, wrapper, plugin.KindStore, env).Store()
		mu.Lock()
		envs[s] = env
		mu.Unlock()
		return s
	}
	testsuite.StoreSuite(t,
		func(t *testing.T) backends.Store {
			project := t.TempDir()
			require.NoError(t, os.MkdirAll(filepath.Join(project, ".dflow"), 0o755))
			return openEnv(t, plugin.Env{Project: project})
		},
		func(t *testing.T, s backends.Store) backends.Store {
			mu.Lock()
			env := envs[s]
			mu.Unlock()
			return openEnv(t, env)
		})
}

func TestServeAnswersUnknownVerbs(t *testing.T) {
	var out strings.Builder
	code := plugin.Serve(context.Background(), "x", plugin.Handlers{Store: testsuite.NewMemStore()}, []string{"vm.create"}, strings.NewReader("{}"), &out)
	require.Equal(t, 0, code)
	require.JSONEq(t, `{"error":{"code":"unknown_verb","message":"unknown verb vm.create","retryable":false}}`, out.String())
	out.Reset()
	plugin.Serve(context.Background(), "x", plugin.Handlers{Store: testsuite.NewMemStore()}, []string{"describe"}, strings.NewReader(""), &out)
	require.JSONEq(t, `{"result":{"protocol":1,"name":"x","kinds":["store"]}}`, out.String())
}
