package main

import (
	"flag"

	"github.com/distributive-flow/dflow/agent"
	"github.com/distributive-flow/dflow/version"
	"github.com/spf13/cobra"
)

func newAgentCmd() *cobra.Command {
	var o agent.Options
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the node agent (VM backends start it on every node)",
		Long: `Run the dflow node agent: it serves the node's API on --listen and refuses every
request not signed by a key in --keys (default DIR/authorized_keys). VM backends
start it on each node; run it by hand only on a machine you add yourself.`,
		Example: `  dflow agent --dir /var/lib/dflow --listen 10.0.0.5:7077 --index 3 --node-id web-3`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Version = version.String()
			return agent.Run(cmd.Context(), o)
		},
	}
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	agent.BindFlags(fs, &o)
	cmd.Flags().AddGoFlagSet(fs)
	return cmd
}
