package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/distributive-flow/dflow/agent"
	"github.com/distributive-flow/dflow/controlplane"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/report"
	"github.com/distributive-flow/dflow/version"
	"github.com/distributive-flow/dflow/worker"
	"github.com/spf13/cobra"
)

func newServerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server",
		Short: "The embedded control plane: Temporal on SQLite, its Web UI, and a worker",
	}
	run := configCmd("run", "Run the control plane in the foreground (what `server start` runs in the background)", func(ctx context.Context, cfg deploy.Config) error {
		err := controlplane.RunServer(ctx, cfg, os.Stderr)
		if errors.Is(err, controlplane.ErrServerRunning) {
			return exit(3, err)
		}
		return err
	})
	start := configCmd("start", "Start the control plane in the background unless it runs", func(ctx context.Context, cfg deploy.Config) error {
		info, started, err := controlplane.EnsureServer(ctx, cfg)
		if err != nil {
			return err
		}
		word := "already running"
		if started {
			word = "started"
		}
		return printServer(cfg.Dir, word, &info)
	})
	for _, f := range serverFlags {
		run.Flags().String(f.name, "", f.usage)
		start.Flags().String(f.name, "", f.usage)
	}
	status := configCmd("status", "Tell whether the control plane runs, and where (exit 3 when it does not)", func(ctx context.Context, cfg deploy.Config) error {
		info, ok, err := controlplane.ServerStatus(cfg)
		switch {
		case err != nil:
			return err
		case ok:
			return printServer(cfg.Dir, "running", &info)
		}
		_ = printServer(cfg.Dir, "stopped", nil)
		return exit(3, errors.New(""))
	})
	stop := configCmd("stop", "Stop the control plane (workflow history is kept; running workflows resume on the next start)", func(ctx context.Context, cfg deploy.Config) error {
		was, err := controlplane.StopServer(cfg, 20*time.Second)
		switch {
		case err != nil:
			return err
		case was:
			fmt.Println("control plane stopped")
		default:
			fmt.Println("control plane was not running")
		}
		return nil
	})
	cmd.AddCommand(run, start, status, stop)
	return cmd
}

// printServer reports the control plane (i nil: stopped) on stdout, and
// its warnings (what it serves beyond loopback) on stderr.
func printServer(dir, word string, i *controlplane.ServerInfo) error {
	if i != nil {
		controlplane.WarnExposed(*i)
	}
	asJSON, _ := jsonOutput()
	return report.ServerState(os.Stdout, asJSON, word, dir, i, time.Now())
}

func newWorkerCmd() *cobra.Command {
	return configCmd("worker", "Run a dflow worker against a Temporal cluster", func(ctx context.Context, cfg deploy.Config) error {
		return worker.Run(ctx, cfg, os.Stderr)
	})
}

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
