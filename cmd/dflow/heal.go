package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/distributive-flow/dflow/controlplane"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/report"
	"github.com/distributive-flow/dflow/workflows"
	"github.com/spf13/cobra"
)

func newRepairCmd() *cobra.Command {
	var watch, stop bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "repair",
		Short: "Verify every node; replace the broken ones and create the missing ones",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("interval") && !watch {
				return badInput("repair: --interval goes with --watch")
			}
			if watch && interval < 100*time.Millisecond {
				return badInput("repair: --interval %s: want at least 100ms", interval)
			}
			if stop {
				return stopLoop(cmd, workflows.RepairWatchID, "repair --watch")
			}
			if watch {
				return startLoop(cmd, workflows.RepairWatchID, "repair --watch", "`dflow repair --stop`", workflows.RepairWatch, func(cfg deploy.Config) any {
					return workflows.RepairWatchRequest{Config: cfg, Interval: interval, Who: controlplane.WhoAmI()}
				})
			}
			return runOp(cmd, "repair", workflows.Repair, func(cfg deploy.Config) any {
				return workflows.RepairRequest{Config: cfg, Who: controlplane.WhoAmI()}
			}, func(w io.Writer, res workflows.RepairResult) error {
				report.Repair(w, res)
				if !res.Whole {
					return errors.New("repair: some nodes are still unhealthy (see above)")
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&watch, "watch", false, "repair continuously, standing aside while other operations run")
	cmd.Flags().DurationVar(&interval, "interval", 10*time.Second, "with --watch: how often to inspect the cluster")
	cmd.Flags().BoolVar(&stop, "stop", false, "end a running repair --watch")
	cmd.MarkFlagsMutuallyExclusive("watch", "stop")
	addWait(cmd)
	return cmd
}

// startLoop starts a watcher workflow and follows it (until Ctrl-C; it
// ends when stopped, with nothing to print).
func startLoop(cmd *cobra.Command, idOf func(deploy.Config) string, label, stopHint string, wf any, req func(cfg deploy.Config) any) error {
	return withClient(cmd, func(ctx context.Context, cp *controlplane.Client) error {
		return cp.RunLoop(ctx, idOf(cp.Config()), label, stopHint, wf, req(cp.Config()), nil)
	})
}

// stopLoop cancels a watcher workflow.
func stopLoop(cmd *cobra.Command, idOf func(deploy.Config) string, label string) error {
	return withClient(cmd, func(ctx context.Context, cp *controlplane.Client) error {
		return cp.StopLoop(ctx, idOf(cp.Config()), label)
	})
}

func newChaosCmd() *cobra.Command {
	var dryRun, showReport, stop bool
	var seed int64
	var minHealthy int
	var rampage time.Duration
	var schedule string
	cmd := &cobra.Command{
		Use:   "chaos-monkey",
		Short: "Destroy a random healthy node (on purpose), once, at an interval, or on a schedule",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("min-healthy") && minHealthy < 0 {
				return badInput("chaos-monkey: --min-healthy %d: want a whole number >= 0", minHealthy)
			}
			if cmd.Flags().Changed("rampage") && rampage < 100*time.Millisecond {
				return badInput("chaos-monkey: --rampage %s: want an interval of at least 100ms", rampage)
			}
			if (showReport || stop) && (dryRun || seed != 0 || cmd.Flags().Changed("min-healthy")) {
				return badInput("chaos-monkey: --dry-run, --seed and --min-healthy go with a kill, not --report or --stop")
			}
			req := func(cfg deploy.Config) workflows.ChaosRequest {
				return workflows.ChaosRequest{Config: cfg, Seed: seed, MinHealthy: minHealthy, DryRun: dryRun, Who: controlplane.WhoAmI()}
			}
			switch {
			case showReport:
				ask := func(ctx context.Context, cfg deploy.Config) (report.ChaosReport, error) {
					inv, err := controlplane.ReadInventory(ctx, cfg)
					return report.ChaosReportOf(inv.State.Chaos), err
				}
				_, err := show(cmd, ask, func(r report.ChaosReport) bool { return len(r.Kills) == 0 }, "no kills yet; `dflow chaos-monkey` makes one", report.Chaos)
				return err
			case stop:
				return stopLoop(cmd, workflows.ChaosRampageID, "chaos-monkey --rampage")
			case rampage != 0:
				return startLoop(cmd, workflows.ChaosRampageID, "chaos-monkey --rampage", "`dflow chaos-monkey --stop`", workflows.ChaosRampage, func(cfg deploy.Config) any {
					return workflows.RampageRequest{Chaos: req(cfg), Interval: rampage}
				})
			case schedule != "":
				return createSchedule(cmd, workflows.ScheduledChaos, schedule, func(cfg deploy.Config) workflows.ScheduledRequest {
					r := req(cfg)
					return workflows.ScheduledRequest{Op: workflows.ScheduledChaos, Chaos: &r}
				})
			}
			return runOp(cmd, "chaos-monkey", workflows.Chaos, func(cfg deploy.Config) any { return req(cfg) }, func(w io.Writer, res workflows.ChaosResult) error {
				report.Kill(w, res)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "name the victim, touch nothing")
	cmd.Flags().Int64Var(&seed, "seed", 0, "pick the victim reproducibly from this `N` (0: random)")
	cmd.Flags().IntVar(&minHealthy, "min-healthy", -1, "kill only if at least `N` healthy nodes remain afterwards (default: count-1, at least 1)")
	cmd.Flags().DurationVar(&rampage, "rampage", 0, "kill again every `INTERVAL` (until chaos-monkey --stop)")
	cmd.Flags().StringVar(&schedule, "schedule", "", "create a Temporal Schedule that kills at these `CRON` times")
	cmd.Flags().BoolVar(&showReport, "report", false, "print the kills and their recovery times (MTTR)")
	cmd.Flags().BoolVar(&stop, "stop", false, "end a running --rampage")
	cmd.MarkFlagsMutuallyExclusive("report", "stop", "rampage", "schedule")
	addWait(cmd)
	return cmd
}

func newGCCmd() *cobra.Command {
	var dryRun bool
	var count int
	var older, schedule string
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove old versions from the nodes and the control plane's artifact store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("count") && count < 1 {
				return badInput("gc: --count %d: want a whole number >= 1 (the current release is always kept)", count)
			}
			if _, err := deploy.ParseSince(older, time.Now()); err != nil {
				return &controlplane.InputError{Err: err}
			}
			if count == 0 && older == "" {
				return &controlplane.InputError{Err: deploy.ErrNoPolicy}
			}
			req := func(cfg deploy.Config) workflows.GCRequest {
				return workflows.GCRequest{Config: cfg, Count: count, Older: older, DryRun: dryRun, Who: controlplane.WhoAmI()}
			}
			if schedule != "" {
				return createSchedule(cmd, workflows.ScheduledGC, schedule, func(cfg deploy.Config) workflows.ScheduledRequest {
					r := req(cfg)
					return workflows.ScheduledRequest{Op: workflows.ScheduledGC, GC: &r}
				})
			}
			return runOp(cmd, "gc", workflows.GC, func(cfg deploy.Config) any { return req(cfg) }, report.GC)
		},
	}
	cmd.Flags().IntVar(&count, "count", 0, "keep the versions of the `N` newest succeeded releases")
	cmd.Flags().StringVar(&older, "older", "", "remove versions not used since `DATE|DURATION` (2026-01-31, 7d, 72h)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would go, remove nothing")
	cmd.Flags().StringVar(&schedule, "schedule", "", "create a Temporal Schedule that runs this gc at these `CRON` times")
	cmd.MarkFlagsMutuallyExclusive("dry-run", "schedule")
	addWait(cmd)
	return cmd
}

// createSchedule creates the Temporal Schedule that runs op at the cron
// times spec.
func createSchedule(cmd *cobra.Command, op, spec string, req func(deploy.Config) workflows.ScheduledRequest) error {
	return withClient(cmd, func(ctx context.Context, cp *controlplane.Client) error {
		row, err := cp.CreateSchedule(ctx, op, spec, controlplane.CommandLine(os.Args[1:]), req(cp.Config()))
		if err == nil {
			report.ScheduleCreated(os.Stdout, op, spec, row)
		}
		return err
	})
}

func newSchedulesCmd() *cobra.Command {
	cmd := queryCmd("schedules", "List the cluster's Temporal Schedules (gc, chaos-monkey); delete one", controlplane.ListSchedules, none,
		"no schedules; `dflow gc --count 5 --schedule @daily` makes one", report.Schedules)
	cmd.AddCommand(&cobra.Command{
		Use:   "delete ID",
		Short: "Delete a schedule",
		Args:  exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withSchedule(cmd, "delete", args[0], func(ctx context.Context, cp *controlplane.Client, id string) error {
				if err := cp.DeleteSchedule(ctx, id); err != nil {
					return fmt.Errorf("schedules delete: %w", err)
				}
				fmt.Fprintf(os.Stderr, "deleted schedule %s\n", id)
				return nil
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "trigger ID",
		Short: "Run a schedule's action now and follow it",
		Args:  exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withSchedule(cmd, "trigger", args[0], func(ctx context.Context, cp *controlplane.Client, id string) error {
				var res workflows.ScheduledResult
				if err := cp.RunSchedule(ctx, id, &res, os.Stderr); err != nil {
					return err
				}
				return json.NewEncoder(os.Stdout).Encode(res)
			})
		},
	})
	return cmd
}

// withSchedule resolves a schedule argument (bad input starts nothing),
// connects, and runs f with the client and the schedule's id.
func withSchedule(cmd *cobra.Command, verb, arg string, f func(context.Context, *controlplane.Client, string) error) error {
	return withConfig(cmd, func(ctx context.Context, cfg deploy.Config) error {
		id, err := controlplane.ScheduleIDOf(cfg, arg)
		if err != nil {
			return fmt.Errorf("schedules %s: %w", verb, err)
		}
		return connected(ctx, cfg, func(ctx context.Context, cp *controlplane.Client) error { return f(ctx, cp, id) })
	})
}
