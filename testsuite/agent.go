package testsuite

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/distributive-flow/dflow/agent"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// agentEnv marks a test binary started to be a node agent.
const agentEnv = "DFLOW_TEST_AGENT"

// AgentCommand is the command prefix (for local.Options.Command or
// worker.Env.AgentCommand) that starts this test binary as a node agent; the
// test's TestMain must call ServeAgentIfAsked first.
func AgentCommand() []string { return []string{"/usr/bin/env", agentEnv + "=1", os.Args[0]} }

// ServeAgentIfAsked runs the node agent and exits when this process was
// started by AgentCommand; otherwise it returns at once. It takes the same
// flags as `dflow agent`.
func ServeAgentIfAsked() {
	if os.Getenv(agentEnv) != "1" {
		return
	}
	var o agent.Options
	fs := flag.NewFlagSet("agent", flag.ExitOnError)
	agent.BindFlags(fs, &o)
	_ = fs.Parse(os.Args[1:])
	o.Version = "test"
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := agent.Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// StartAgent starts a node agent in this process with o, in o.Dir, that
// authorizes signer's key; it is stopped when t ends.
func StartAgent(t testing.TB, signer ssh.Signer, o agent.Options) *agent.Agent {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(o.Dir, "authorized_keys"), ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o600))
	a, err := agent.New(o)
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = a.Stop(ctx)
	})
	return a
}

// NewSigner is a fresh ed25519 key: a control plane's, or a login's.
func NewSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	s, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	return s
}

// AgentPID is the process id in the pid file of the agent of node
// directory dir.
func AgentPID(t testing.TB, dir string) int {
	t.Helper()
	b, err := os.ReadFile(agent.PIDPath(dir))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return pid
}

// KillAgent kills the agent of node directory dir with SIGKILL, behind its
// backend's back, and waits until it is gone.
func KillAgent(t testing.TB, dir string) {
	t.Helper()
	require.NoError(t, syscall.Kill(AgentPID(t, dir), syscall.SIGKILL))
	require.Eventually(t, func() bool { return !agent.Running(dir) }, 5*time.Second, 10*time.Millisecond)
}
