package main

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/distributive-flow/dflow/controlplane"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/spf13/cobra"
)

func newLogsCmd() *cobra.Command {
	var o controlplane.LogsOptions
	cmd := &cobra.Command{
		Use:   "logs [INDEX...]",
		Short: "Show the app's output (stdout and stderr) from the nodes; -f follows it across deploys",
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				i, err := strconv.Atoi(a)
				if err != nil || i < 0 {
					return badInput("logs: %q is not a node index", a)
				}
				o.Indexes = append(o.Indexes, i)
			}
			if o.Since < 0 {
				return badInput("logs: --since %s: want a duration like 10m", o.Since)
			}
			if o.Agent && o.Version != "" {
				return badInput("logs: --agent and --version: an agent's log has no version")
			}
			return withConfig(cmd, func(ctx context.Context, cfg deploy.Config) error {
				return controlplane.Logs(ctx, cfg, o, os.Stdout, os.Stderr)
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.Follow, "follow", "f", false, "go on showing what the app writes, across deploys, until Ctrl-C")
	f.StringVar(&o.Version, "version", "", "show the process of `VERSION` (a prefix of it) instead of the serving one")
	f.DurationVar(&o.Since, "since", 0, "only lines written in the last `DURATION` (like 10m; to about a second)")
	o.Tail = -1
	f.Var((*tailFlag)(&o.Tail), "tail", "the last `N` lines of each node (default 100, all with --since; 0: none)")
	f.BoolVar(&o.Agent, "agent", false, "the nodes' agents' own logs instead of the app's")
	return cmd
}

// tailFlag is --tail: an int whose unset value (-1) prints as no default.
type tailFlag int

func (t *tailFlag) String() string {
	if *t < 0 {
		return ""
	}
	return strconv.Itoa(int(*t))
}

func (t *tailFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("want a number of lines, 0 or more")
	}
	*t = tailFlag(n)
	return nil
}

func (t *tailFlag) Type() string { return "int" }
