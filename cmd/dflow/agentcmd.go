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
		Args:  cobra.NoArgs,
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
