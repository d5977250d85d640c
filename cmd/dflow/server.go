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
	}
	cmd.AddCommand(newServerRunCmd(), newServerStartCmd(), newServerStatusCmd(), newServerStopCmd())
	return cmd
}

func newServerRunCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the control plane in the foreground (what `server start` runs in the background)",
		Args:  cobra.NoArgs,
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
		Args:  cobra.NoArgs,
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
		Args:  cobra.NoArgs,
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
		Use:   "stop",
		Short: "Stop the control plane (workflow history is kept; running workflows resume on the next start)",
		Args:  cobra.NoArgs,
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
		Args:  cobra.NoArgs,
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
