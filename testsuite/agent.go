package testsuite

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/distributive-flow/dflow/agent"
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
