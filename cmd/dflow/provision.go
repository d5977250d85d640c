package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/distributive-flow/dflow/controlplane"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/report"
	"github.com/distributive-flow/dflow/workflows"
	"github.com/spf13/cobra"
)

func newSetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set COUNT",
		Short: "Converge the cluster to COUNT nodes",
		Args:  exactArgs(1, "COUNT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			count, err := strconv.Atoi(args[0])
			if err != nil || count < 0 {
				return fmt.Errorf("set: COUNT must be a whole number >= 0, got %q", args[0])
			}
			return provision(cmd, workflows.ProvisionRequest{Op: workflows.OpSet, Count: count}, "set "+args[0])
		},
	}
	addWait(cmd)
	return cmd
}

func newCycleCmd() *cobra.Command {
	return indexCmd(workflows.OpCycle, "Recreate the node at INDEX (same index and address, fresh node, the current release)")
}

func newDestroyCmd() *cobra.Command {
	return indexCmd(workflows.OpDestroy, "Destroy the node at INDEX (the desired count is unchanged: repair brings it back)")
}

func indexCmd(op, short string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   op + " INDEX",
		Short: short,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			idx, err := indexArg(cmd, args)
			if err != nil {
				return err
			}
			return provision(cmd, workflows.ProvisionRequest{Op: op, Index: idx}, fmt.Sprintf("%s %d", op, idx))
		},
	}
	cmd.Flags().Int("index", -1, "node `INDEX` (instead of the argument)")
	addWait(cmd)
	return cmd
}

// indexArg takes the node index from the argument or --index.
func indexArg(cmd *cobra.Command, args []string) (int, error) {
	flag := cmd.Flags().Lookup("index")
	switch {
	case len(args) == 1 && flag.Changed:
		return 0, badInput("%s: give the index as an argument or --index, not both", cmd.Name())
	case len(args) == 1:
		i, err := strconv.Atoi(args[0])
		if err != nil || i < 0 {
			return 0, fmt.Errorf("%s: INDEX must be a whole number >= 0, got %q", cmd.Name(), args[0])
		}
		return i, nil
	case flag.Changed:
		i, _ := strconv.Atoi(flag.Value.String())
		if i < 0 {
			return 0, badInput("%s: --index must be >= 0", cmd.Name())
		}
		return i, nil
	}
	return 0, fmt.Errorf("%s: which node? give INDEX (see `dflow list`)", cmd.Name())
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return badInput("%s: want %s, got %d arguments (see `dflow %s --help`)", cmd.Name(), what, len(args), cmd.Name())
		}
		return nil
	}
}

// provision checks the request against what exists (bad input changes
// nothing), runs the Provision workflow and says what the cluster has now.
func provision(cmd *cobra.Command, req workflows.ProvisionRequest, command string) error {
	return withConfig(cmd, func(ctx context.Context, cfg deploy.Config) error {
		if err := controlplane.CheckProvision(ctx, cfg, req); err != nil {
			return err
		}
		return runOp(cmd, command, workflows.Provision, func(cfg deploy.Config) any { req.Config = cfg; return req }, func(w io.Writer, res workflows.ProvisionResult) error {
			inv, err := controlplane.ReadInventory(ctx, cfg)
			if err == nil {
				report.Provisioned(w, res, inv.State.Nodes)
			}
			return err
		})
	})
}

func newGetCmd() *cobra.Command {
	ask := func(ctx context.Context, cfg deploy.Config) (map[string]int, error) {
		inv, err := controlplane.ReadInventory(ctx, cfg)
		return map[string]int{"count": len(inv.State.Nodes), "desired": inv.State.Count, "live": len(inv.Live)}, err
	}
	return queryCmd("get", "Print the number of nodes in the cluster", ask, nil, "", func(w io.Writer, n map[string]int) error {
		fmt.Fprintln(w, n["count"])
		if n["desired"] != n["count"] {
			fmt.Fprintf(os.Stderr, "dflow: note: the desired count is %d\n", n["desired"])
		}
		return nil
	})
}

func newListCmd() *cobra.Command {
	return queryCmd("list", "List the nodes: index, address, state", controlplane.ListNodes, none, "no nodes; `dflow set 3` makes three", report.Nodes)
}

func newFollowCmd() *cobra.Command {
	return clientCmd("follow", "Follow the cluster's running operation until it ends", func(ctx context.Context, cp *controlplane.Client) error {
		running, err := cp.FollowRunning(ctx, os.Stderr)
		if !running && err == nil {
			fmt.Fprintf(os.Stderr, "cluster %s runs no operation\n", cp.Config().Name)
		}
		return err
	})
}

func newCancelCmd() *cobra.Command {
	return clientCmd("cancel", "Cancel the cluster's running operation", func(ctx context.Context, cp *controlplane.Client) error {
		id, err := cp.CancelOp(ctx)
		if err == nil {
			fmt.Fprintf(os.Stderr, "asked %s to cancel\n", id)
		}
		return err
	})
}
