package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/distributive-flow/dflow/cmd/dflow/help"
	"github.com/distributive-flow/dflow/controlplane"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/report"
	"github.com/distributive-flow/dflow/version"
	"github.com/spf13/cobra"
)

// globals are the flags every command has.
type globals struct {
	project  string
	temporal string
	output   string
	verbose  bool
}

var g globals

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "dflow",
		Short:         "Deploy Haskell applications to a cluster of nodes with zero downtime",
		Version:       version.String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return badInput("%s: %w (see `%s --help`)", c.CommandPath(), err, c.CommandPath())
	})
	root.PersistentFlags().StringVarP(&g.project, "project", "C", "", "run as if dflow was started in `DIR`")
	root.PersistentFlags().StringVar(&g.temporal, "temporal", "", "Temporal frontend `HOST:PORT` (default: $TEMPORAL_ADDRESS, else the embedded control plane)")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	for _, f := range backendFlags {
		root.PersistentFlags().String(f.name, "", f.usage)
	}
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "on failure, also print the workflow and the whole error chain")
	root.AddCommand(
		newInitCmd(), newConfigCmd(),
		newSetCmd(), newGetCmd(), newListCmd(), newCycleCmd(), newDestroyCmd(),
		newBuildCmd(), newCopyCmd(), newDeployCmd(), newRollbackCmd(), newStartCmd(), newStopCmd(), newRestartCmd(),
		newStatusCmd(), newVersionsCmd(), newLogsCmd(), newCompareChecksumsCmd(), newReleasesCmd(), newVerifyCmd(), newHealthCmd(),
		newFollowCmd(), newCancelCmd(),
		newRepairCmd(), newChaosCmd(), newGCCmd(), newSchedulesCmd(),
		newServerCmd(), newWorkerCmd(), newAgentCmd(),
	)
	help.Apply(root)
	return root
}

// configFlag is a flag that sets a dflow.yaml key (loadConfig reads them).
type configFlag struct{ name, key, usage string }

// backendFlags choose the backends (and the image and keys they use):
// every command accepts them (persistent flags on the root), so the same
// flags can be given to every command of a session.
var backendFlags = []configFlag{
	{"image", "image", "`IMAGE` handed to the VM backend"},
	{"vm-backend", "backends.vm", "VM backend `NAME` (local)"},
	{"container-backend", "backends.container", "container backend `NAME` (process)"},
	{"builder", "backends.builder", "builder `NAME` (cabal)"},
	{"package-reader", "backends.package_reader", "package reader `NAME` (cabal)"},
	{"store", "backends.store", "store: embedded or etcd://HOST:PORT"},
	{"keys", "keys", "authorized_keys `FILE` whose keys may also control the nodes"},
}

// serverFlags are `server run` and `server start`'s.
var serverFlags = []configFlag{
	{"ui", "temporal.ui", "Web UI `HOST:PORT`, the UI alone (default from dflow.yaml, 127.0.0.1:8233; a taken port falls back to a free one; port 0 disables the UI). Beyond loopback, whoever reaches it can terminate and reset workflows"},
	{"frontend", "temporal.frontend", "also serve the Temporal frontend on `HOST:PORT` (default from dflow.yaml: none, 127.0.0.1 only). No authentication: whoever reaches it can start, signal, reset and terminate any workflow"},
}

// addWait registers --wait, which runOp reads.
func addWait(cmd *cobra.Command) {
	cmd.Flags().Bool("wait", false, "wait for a running operation on the cluster instead of failing")
}

// loadConfig loads dflow.yaml (see controlplane.LoadConfig) with the
// command's flags and TEMPORAL_ADDRESS (--temporal wins) over it.
func loadConfig(cmd *cobra.Command) (deploy.Config, error) {
	var ov []controlplane.Override
	for _, f := range slices.Concat(backendFlags, serverFlags) {
		if fl := cmd.Flags().Lookup(f.name); fl != nil && fl.Changed {
			ov = append(ov, controlplane.Override{Key: f.key, Value: fl.Value.String(), Source: "--" + f.name})
		}
	}
	if g.temporal != "" {
		ov = append(ov, controlplane.Override{Key: "temporal.address", Value: g.temporal, Source: "--temporal"})
	} else {
		ov = append(ov, controlplane.EnvOverrides()...)
	}
	return controlplane.LoadConfig(g.project, ov...)
}

// badInput is an error in the operator's input (a flag, an argument): exit 2.
func badInput(format string, args ...any) error {
	return &controlplane.InputError{Err: fmt.Errorf(format, args...)}
}

// withConfig loads the command's configuration and runs f with it (a
// check first is how bad input is refused, exit 2, with nothing started).
func withConfig(cmd *cobra.Command, f func(context.Context, deploy.Config) error) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	return f(cmd.Context(), cfg)
}

// configCmd is a command with no arguments that runs f with its
// configuration.
func configCmd(use, short string, f func(context.Context, deploy.Config) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, args []string) error {
		return withConfig(cmd, f)
	}}
}

// clientCmd is a command with no arguments that runs f with a client of
// its control plane.
func clientCmd(use, short string, f func(context.Context, *controlplane.Client) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, args []string) error {
		return withClient(cmd, f)
	}}
}

// withClient loads the command's configuration, connects to its control
// plane (recording the configuration's revision in the Store, starting
// the embedded control plane when it is used), and runs f with the client.
func withClient(cmd *cobra.Command, f func(ctx context.Context, cp *controlplane.Client) error) error {
	return withConfig(cmd, func(ctx context.Context, cfg deploy.Config) error { return connected(ctx, cfg, f) })
}

// connected connects to cfg's control plane and runs f with the client.
func connected(ctx context.Context, cfg deploy.Config, f func(ctx context.Context, cp *controlplane.Client) error) error {
	asJSON, err := jsonOutput()
	if err != nil {
		return err
	}
	cp, err := controlplane.Connect(ctx, &cfg)
	if err != nil {
		return err
	}
	defer cp.Close()
	cp.ProgressJSON = asJSON
	return f(ctx, cp)
}

// runOp runs a mutating command's workflow under the cluster lock (with
// --wait, behind the running operation) and follows it to its end: it
// makes the workflow's input from the configuration with req, and prints
// the result: as JSON with -o json, else with text.
func runOp[R any](cmd *cobra.Command, command string, wf any, req func(cfg deploy.Config) any, text func(io.Writer, R) error) error {
	asJSON, err := jsonOutput()
	if err != nil {
		return err
	}
	return withClient(cmd, func(ctx context.Context, cp *controlplane.Client) error {
		var res R
		wait, _ := cmd.Flags().GetBool("wait")
		if err := cp.Run(ctx, command, wait, wf, req(cp.Config()), &res); err != nil {
			return err
		}
		if asJSON {
			return json.NewEncoder(os.Stdout).Encode(res)
		}
		return text(os.Stdout, res)
	})
}

// opCmd is a mutating command with no arguments: check (when given) refuses
// bad input before anything starts, then runOp runs wf.
func opCmd[R any](use, short string, check func(context.Context, deploy.Config) error, wf any, req func(deploy.Config) any, text func(io.Writer, R) error) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, args []string) error {
		if check != nil {
			if err := withConfig(cmd, check); err != nil {
				return err
			}
		}
		return runOp(cmd, use, wf, req, text)
	}}
	addWait(cmd)
	return cmd
}

func jsonOutput() (bool, error) {
	switch g.output {
	case "text", "":
		return false, nil
	case "json":
		return true, nil
	}
	return false, fmt.Errorf("-o %s: want text or json", g.output)
}

// queryCmd is a read-only command with no arguments: see show.
func queryCmd[T any](use, short string, ask func(context.Context, deploy.Config) (T, error), empty func(T) bool, hint string, text func(io.Writer, T) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, args []string) error {
		_, err := show(cmd, ask, empty, hint, text)
		return err
	}}
}

// show runs a read-only command and returns the answer (for a command
// whose exit status depends on it): it loads the configuration, asks, and
// prints the answer: as JSON with -o json (an empty list as []), else hint
// on stderr when empty says there is nothing to show, else text.
func show[T any](cmd *cobra.Command, ask func(context.Context, deploy.Config) (T, error), empty func(T) bool, hint string, text func(io.Writer, T) error) (v T, err error) {
	asJSON, err := jsonOutput()
	if err == nil {
		err = withConfig(cmd, func(ctx context.Context, cfg deploy.Config) (err error) { v, err = ask(ctx, cfg); return err })
	}
	switch {
	case err != nil:
	case asJSON:
		err = report.JSON(os.Stdout, v)
	case empty != nil && empty(v):
		fmt.Fprintln(os.Stderr, hint)
	default:
		err = text(os.Stdout, v)
	}
	return v, err
}

// none tells whether a list is empty (show's empty).
func none[E any](l []E) bool { return len(l) == 0 }
