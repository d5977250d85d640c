package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/distributive-flow/dflow/controlplane"
	"github.com/distributive-flow/dflow/report"
	"github.com/distributive-flow/dflow/worker"
	"github.com/spf13/cobra"
)

func newServerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server",
		Short: "The embedded control plane: Temporal on SQLite, its Web UI, and a worker",
		Long: `The embedded control plane of this project: a Temporal server on a SQLite file under
.dflow/, the Temporal Web UI, and a dflow worker, in one background process. Commands
that need it start it when it is not running; these subcommands manage it by hand.
Each project has its own; ports are chosen so several never collide.

The Temporal frontend and its internal services listen on 127.0.0.1 only. --ui
(temporal.ui) moves the Web UI alone: on another address, whoever reaches the UI can
read every workflow's history and terminate and reset workflows (no authentication),
and dflow says so. --frontend (temporal.frontend) also serves the frontend on an
address of your choice: whoever reaches it can start, signal, reset and terminate any
workflow (no authentication); put it behind a firewall or a VPN only you reach.`,
		Example: `  dflow server status
  dflow server start --ui 127.0.0.1:9233
  dflow server start --ui 0.0.0.0:8233          # the Web UI on every interface (warned)
  dflow server start --frontend 10.0.0.5:7233   # the frontend for workers on other machines
  dflow server stop`,
	}
	cmd.AddCommand(newServerRunCmd(), newServerStartCmd(), newServerStatusCmd(), newServerStopCmd())
	return cmd
}

func newServerRunCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the control plane in the foreground (what `server start` runs in the background)",
		Example: `  dflow server run --ui 127.0.0.1:8233
  dflow server run --ui 0.0.0.0:8233 --frontend 10.0.0.5:7233`,
		Args: cobra.NoArgs,
	}
	addFlags(cmd, "ui", "frontend")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := loadConfig(cmd)
		if err != nil {
			return err
		}
		err = controlplane.RunServer(cmd.Context(), cfg, os.Stderr)
		if errors.Is(err, controlplane.ErrServerRunning) {
			return &exitError{code: 3, err: err}
		}
		return err
	}
	return cmd
}

func newServerStartCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Start the control plane in the background unless it runs",
		Example: `  dflow server start
  dflow server start --ui 0.0.0.0:8233          # the Web UI on every interface (warned)
  dflow server start --frontend 10.0.0.5:7233   # also the frontend, for workers elsewhere (no authentication: warned)`,
		Args: cobra.NoArgs,
	}
	addFlags(cmd, "ui", "frontend")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := loadConfig(cmd)
		if err != nil {
			return err
		}
		info, started, err := controlplane.EnsureServer(cmd.Context(), cfg)
		if err != nil {
			return err
		}
		word := "already running"
		if started {
			word = "started"
		}
		return printServer(cfg.Dir, word, info)
	}
	return cmd
}

// printServer reports a running control plane on stdout, and its warnings
// (what it serves beyond loopback) on stderr.
func printServer(dir, word string, i controlplane.ServerInfo) error {
	controlplane.WarnExposed(i)
	if asJSON, _ := jsonOutput(); asJSON {
		return json.NewEncoder(os.Stdout).Encode(report.ServerJSON(word, &i))
	}
	return report.Server(os.Stdout, word, dir, i, time.Now())
}

func newServerStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Tell whether the control plane runs, and where (exit 3 when it does not)",
		Example: `  dflow server status
  dflow server status -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			info, ok, err := controlplane.ServerStatus(cfg)
			if err != nil {
				return err
			}
			if !ok {
				if asJSON, _ := jsonOutput(); asJSON {
					_ = json.NewEncoder(os.Stdout).Encode(report.ServerJSON("stopped", nil))
				} else {
					fmt.Printf("control plane not running for %s (it starts with the first command that needs it)\n", cfg.Dir)
				}
				return &exitError{code: 3, err: errors.New("")}
			}
			return printServer(cfg.Dir, "running", info)
		},
	}
}

func newServerStopCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "stop",
		Short:   "Stop the control plane (workflow history is kept; running workflows resume on the next start)",
		Example: `  dflow server stop`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			was, err := controlplane.StopServer(cfg, 20*time.Second)
			if err != nil {
				return err
			}
			if was {
				fmt.Println("control plane stopped")
			} else {
				fmt.Println("control plane was not running")
			}
			return nil
		},
	}
}

func newWorkerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a dflow worker against a Temporal cluster",
		Long: `Run a dflow worker against a real Temporal cluster (run as many as you like, on as many
machines). The embedded control plane runs its own worker: this command is for scaling out.`,
		Example: `  dflow worker --temporal temporal.internal:7233
  TEMPORAL_ADDRESS=temporal.internal:7233 dflow worker`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			return worker.Run(cmd.Context(), cfg, os.Stderr)
		},
	}
	return cmd
}
