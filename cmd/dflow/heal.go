package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/distributive-flow/dflow/controlplane"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/workflows"
	"github.com/spf13/cobra"
)

// scheduleCatchup is how late a Schedule may still fire after the control
// plane was down: short, so a restart does not replay missed chaos.
const scheduleCatchup = time.Minute

func newRepairCmd() *cobra.Command {
	var wait, watch, stop bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "repair",
		Short: "Verify every node; replace the broken ones and create the missing ones",
		Long: `Verify every node (its agent answers, its serving process is alive, its executable is the
one that was built, and verify passes) and heal the cluster: destroy the nodes that fail
(and forget recorded nodes that are gone), create the nodes missing up to the desired
count (the last ` + "`dflow set`" + `), and start the current release on them through the same
zero-downtime path as deploy. A cluster stopped on purpose (` + "`dflow stop`" + `) is left stopped.

--watch runs it continuously: every --interval a workflow (ID dflow-<cluster>-repair)
inspects the cluster and, when something needs repair, runs a repair under the cluster
lock; while a deploy, rollback or another operation holds the lock it stands aside and
says so. Every repair is printed and recorded in the store; a repair that makes the
cluster whole again closes chaos-monkey's kills (see chaos-monkey --report). Ctrl-C stops
following, not the watch: ` + "`dflow repair --stop`" + ` ends it.`,
		Example: `  dflow repair
  dflow repair --watch --interval 10s
  dflow repair --stop`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("interval") && !watch {
				return errors.New("repair: --interval goes with --watch")
			}
			if watch && interval < 100*time.Millisecond {
				return fmt.Errorf("repair: --interval %s: want at least 100ms", interval)
			}
			if stop && watch {
				return errors.New("repair: give --watch or --stop, not both")
			}
			if stop {
				return stopLoop(cmd, workflows.RepairWatchID, "repair --watch")
			}
			if watch {
				var res workflows.WatchResult
				return startLoop(cmd, workflows.RepairWatchID, "repair --watch", "`dflow repair --stop`", func(cfg deploy.Config) any {
					return workflows.RepairWatchRequest{Config: cfg, Interval: interval, Who: controlplane.WhoAmI()}
				}, workflows.RepairWatch, &res)
			}
			var res workflows.RepairResult
			asJSON, err := operation(cmd, "repair", wait, workflows.Repair, func(cfg deploy.Config) any {
				return workflows.RepairRequest{Config: cfg, Who: controlplane.WhoAmI()}
			}, &res)
			if err != nil || asJSON {
				return printJSON(asJSON, res, err)
			}
			if res.Plan.Empty() {
				fmt.Println("nothing to repair")
			}
			for _, a := range res.Plan.Destroy {
				fmt.Printf("node %d replaced: %s\n", a.Index, a.Reason)
			}
			replaced := map[int]bool{}
			for _, a := range res.Plan.Destroy {
				replaced[a.Index] = true
			}
			for _, n := range res.Created {
				if !replaced[n.Index] {
					fmt.Printf("node %d created at %s\n", n.Index, n.Address)
				}
			}
			if res.Version != "" {
				fmt.Printf("version %s started on %d nodes\n", deploy.ShortVersion(res.Version), len(res.Provisioned))
			}
			state := "whole and healthy"
			if !res.Whole {
				state = "NOT whole and healthy"
			}
			fmt.Printf("the cluster is %s\n", state)
			if !res.Whole {
				return &exitError{code: 1, err: errors.New("repair: some nodes are still unhealthy (see above)")}
			}
			return nil
		},
	}
	addFlags(cmd, "image", "vm-backend", "store", "keys")
	cmd.Flags().BoolVar(&watch, "watch", false, "repair continuously, standing aside while other operations run")
	cmd.Flags().DurationVar(&interval, "interval", 10*time.Second, "with --watch: how often to inspect the cluster")
	cmd.Flags().BoolVar(&stop, "stop", false, "end a running repair --watch")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for a running operation on the cluster instead of failing")
	return cmd
}

// startLoop starts a watcher workflow (repair --watch, chaos-monkey
// --rampage) under its own ID (not the cluster lock: it takes the lock for
// each round) and follows it.
func startLoop(cmd *cobra.Command, idOf func(deploy.Config) string, label, stopHint string, req func(cfg deploy.Config) any, wf any, result any) error {
	ctx := cmd.Context()
	if _, err := jsonOutput(); err != nil {
		return err
	}
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	cp, err := connect(ctx, &cfg)
	if err != nil {
		return err
	}
	defer cp.Close()
	id := idOf(cfg)
	if err := cp.StartLoop(ctx, id, label, stopHint, wf, req(cfg)); err != nil {
		return err
	}
	// Follow the newest run: the loop continues as new now and then.
	return cp.Follow(ctx, label, id, "", result, os.Stderr)
}

// stopLoop cancels a watcher workflow.
func stopLoop(cmd *cobra.Command, idOf func(deploy.Config) string, label string) error {
	cp, err := connectCmd(cmd)
	if err != nil {
		return err
	}
	defer cp.Close()
	id := idOf(cp.Config())
	err = cp.Stop(cmd.Context(), id)
	if errors.Is(err, controlplane.ErrNotRunning) {
		return fmt.Errorf("%s does not run on cluster %s", label, cp.Config().Name)
	}
	if err != nil {
		return fmt.Errorf("stop %s: %w", label, err)
	}
	fmt.Fprintf(os.Stderr, "asked %s (%s) to stop\n", label, id)
	return nil
}

func newChaosCmd() *cobra.Command {
	var wait, dryRun, report, stop bool
	var seed int64
	var minHealthy int
	var rampage time.Duration
	var schedule string
	cmd := &cobra.Command{
		Use:   "chaos-monkey",
		Short: "Destroy a random healthy node (on purpose), once, at an interval, or on a schedule",
		Long: `Destroy one random healthy node through the VM backend, to prove the cluster heals
(run ` + "`dflow repair --watch`" + ` beside it). The kill runs under the cluster lock, so never while a
deploy, rollback or repair runs, and is recorded in the store; the repair that makes the
cluster whole and healthy again records the recovery time.

Guardrail: a node is killed only if at least --min-healthy healthy nodes remain after it
(default: the desired count minus 1, at least 1: only a whole cluster is attacked, one
node at a time, and a one-node cluster never). --dry-run names the victim and touches
nothing; --seed makes the pick reproducible.

--rampage INTERVAL kills again every INTERVAL (a workflow, ID dflow-<cluster>-chaos, that
skips a round while another operation holds the lock); ` + "`dflow chaos-monkey --stop`" + ` ends it.
--schedule CRON creates a Temporal Schedule instead (see ` + "`dflow schedules`" + `); it fires only
while the control plane runs, and a missed run is not replayed later than a minute.
--report prints every kill with its recovery time, and the mean, median and max (MTTR).`,
		Example: `  dflow chaos-monkey --dry-run
  dflow chaos-monkey
  dflow chaos-monkey --rampage 30s --min-healthy 2
  dflow chaos-monkey --schedule "0 14 * * 1-5"     # weekdays at 14:00
  dflow chaos-monkey --report -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			modes := 0
			for _, on := range []bool{report, stop, rampage != 0, schedule != ""} {
				if on {
					modes++
				}
			}
			if modes > 1 {
				return errors.New("chaos-monkey: give one of --report, --stop, --rampage, --schedule")
			}
			if cmd.Flags().Changed("min-healthy") && minHealthy < 0 {
				return fmt.Errorf("chaos-monkey: --min-healthy %d: want a whole number >= 0", minHealthy)
			}
			if cmd.Flags().Changed("rampage") && rampage < 100*time.Millisecond {
				return fmt.Errorf("chaos-monkey: --rampage %s: want an interval of at least 100ms", rampage)
			}
			if (report || stop) && (dryRun || seed != 0 || cmd.Flags().Changed("min-healthy")) {
				return errors.New("chaos-monkey: --dry-run, --seed and --min-healthy go with a kill, not --report or --stop")
			}
			req := func(cfg deploy.Config) workflows.ChaosRequest {
				return workflows.ChaosRequest{Config: cfg, Seed: seed, MinHealthy: minHealthy, DryRun: dryRun, Who: controlplane.WhoAmI()}
			}
			switch {
			case report:
				return chaosReport(cmd)
			case stop:
				return stopLoop(cmd, workflows.ChaosRampageID, "chaos-monkey --rampage")
			case rampage != 0:
				var res workflows.RampageResult
				return startLoop(cmd, workflows.ChaosRampageID, "chaos-monkey --rampage", "`dflow chaos-monkey --stop`", func(cfg deploy.Config) any {
					return workflows.RampageRequest{Chaos: req(cfg), Interval: rampage}
				}, workflows.ChaosRampage, &res)
			case schedule != "":
				return createSchedule(cmd, workflows.ScheduledChaos, schedule, func(cfg deploy.Config) workflows.ScheduledRequest {
					r := req(cfg)
					return workflows.ScheduledRequest{Op: workflows.ScheduledChaos, Chaos: &r}
				})
			}
			var res workflows.ChaosResult
			asJSON, err := operation(cmd, "chaos-monkey", wait, workflows.Chaos, func(cfg deploy.Config) any { return req(cfg) }, &res)
			if err != nil || asJSON {
				return printJSON(asJSON, res, err)
			}
			switch {
			case res.Skipped != "":
				fmt.Printf("no kill: %s\n", res.Skipped)
			case res.DryRun:
				fmt.Printf("dry run: would destroy node %d (%s)\n", *res.Victim, res.Node)
			default:
				fmt.Printf("destroyed node %d (%s); `dflow repair` brings it back\n", *res.Victim, res.Node)
			}
			return nil
		},
	}
	addFlags(cmd, "vm-backend", "store")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "name the victim, touch nothing")
	cmd.Flags().Int64Var(&seed, "seed", 0, "pick the victim reproducibly from this `N` (0: random)")
	cmd.Flags().IntVar(&minHealthy, "min-healthy", -1, "kill only if at least `N` healthy nodes remain afterwards (default: count-1, at least 1)")
	cmd.Flags().DurationVar(&rampage, "rampage", 0, "kill again every `INTERVAL` (until chaos-monkey --stop)")
	cmd.Flags().StringVar(&schedule, "schedule", "", "create a Temporal Schedule that kills at these `CRON` times")
	cmd.Flags().BoolVar(&report, "report", false, "print the kills and their recovery times (MTTR)")
	cmd.Flags().BoolVar(&stop, "stop", false, "end a running --rampage")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for a running operation on the cluster instead of failing")
	return cmd
}

// chaosReportJSON is what chaos-monkey --report prints with -o json.
type chaosReportJSON struct {
	Kills   []deploy.ChaosRecord `json:"kills"`
	Summary deploy.Recovery      `json:"summary"`
}

func chaosReport(cmd *cobra.Command) error {
	asJSON, cfg, err := outputAndConfig(cmd)
	if err != nil {
		return err
	}
	inv, err := inventory(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	rep := chaosReportOf(inv.State.Chaos)
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(rep)
	}
	if len(rep.Kills) == 0 {
		fmt.Fprintln(os.Stderr, "no kills yet; `dflow chaos-monkey` makes one")
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHEN\tNODE\tID\tRECOVERED\tRECOVERY")
	for _, k := range rep.Kills {
		rec, took := "not yet", "-"
		if !k.RecoveredAt.IsZero() {
			rec = k.RecoveredAt.Local().Format("15:04:05.000")
			took = fmt.Sprintf("%.1fs", k.RecoverySeconds)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", k.At.Local().Format("2006-01-02 15:04:05.000"), k.Index, k.NodeID, rec, took)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s := rep.Summary
	fmt.Printf("%d kills, %d recovered; time to recover: mean %.1fs, p50 %.1fs, max %.1fs\n", s.Kills, s.Recovered, s.Mean, s.P50, s.Max)
	return nil
}

func chaosReportOf(kills []deploy.ChaosRecord) chaosReportJSON {
	if kills == nil {
		kills = []deploy.ChaosRecord{}
	}
	return chaosReportJSON{Kills: kills, Summary: deploy.SummarizeRecovery(kills)}
}

func newGCCmd() *cobra.Command {
	var wait, dryRun bool
	var count int
	var older, schedule string
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove old versions from the nodes and the control plane's artifact store",
		Long: `Remove old versions (bundle and unpacked release) from every node and from the control
plane's artifact store (.dflow/artifacts). Keeps the versions of the --count newest
succeeded releases and/or those released or built since --older (a date, a time, or a
duration before now: 72h, 7d, 2w); with both, whatever either keeps stays. Whatever the
flags, gc never removes the current release, a version running on any node, the newest
build, nor (with --count N) the versions the next N-1 rollbacks go back to. Every node must
answer. Release records stay; rolling back further than what is kept then fails, saying
the bundle is gone. --dry-run lists what would go and which rollback targets would be lost.

--schedule CRON creates a Temporal Schedule that runs this gc (see ` + "`dflow schedules`" + `); it
fires only while the control plane runs; --older is read at each run.`,
		Example: `  dflow gc --count 5 --dry-run
  dflow gc --count 5
  dflow gc --older 30d
  dflow gc --count 3 --schedule "@daily"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("count") && count < 1 {
				return fmt.Errorf("gc: --count %d: want a whole number >= 1 (the current release is always kept)", count)
			}
			if _, err := deploy.ParseSince(older, time.Now()); err != nil {
				return err
			}
			if count == 0 && older == "" {
				return deploy.ErrNoPolicy
			}
			if schedule != "" && dryRun {
				return errors.New("gc: --dry-run does not go with --schedule")
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
			var res workflows.GCResult
			asJSON, err := operation(cmd, "gc", wait, workflows.GC, func(cfg deploy.Config) any { return req(cfg) }, &res)
			if err != nil || asJSON {
				return printJSON(asJSON, res, err)
			}
			printGC(res)
			return nil
		},
	}
	addFlags(cmd, "store")
	cmd.Flags().IntVar(&count, "count", 0, "keep the versions of the `N` newest succeeded releases")
	cmd.Flags().StringVar(&older, "older", "", "remove versions not used since `DATE|DURATION` (2026-01-31, 7d, 72h)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would go, remove nothing")
	cmd.Flags().StringVar(&schedule, "schedule", "", "create a Temporal Schedule that runs this gc at these `CRON` times")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for a running operation on the cluster instead of failing")
	return cmd
}

func printGC(res workflows.GCResult) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tVERSION\tDIGEST\tLAST USED\tNODES\tWHY")
	row := func(mark string, v deploy.GCVersion, why string) {
		used := "-"
		if !v.LastUsed.IsZero() {
			used = v.LastUsed.Local().Format("2006-01-02 15:04")
		}
		nodes := make([]string, len(v.Nodes))
		for i, n := range v.Nodes {
			nodes[i] = fmt.Sprint(n)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", mark, dash(deploy.ShortVersion(v.Version)), short12(v.Digest), used, dash(strings.Join(nodes, ",")), why)
	}
	for _, v := range res.Plan.Keep {
		row("keep", v, strings.Join(v.Keep, "; "))
	}
	verb := "removed"
	if res.DryRun {
		verb = "would go"
	}
	for _, v := range res.Plan.Remove {
		row(verb, v, "")
	}
	_ = tw.Flush()
	for _, r := range res.Plan.LostRollbacks {
		fmt.Printf("rollback to release %d (version %s) is not possible after this\n", r.ID, deploy.ShortVersion(r.Version))
	}
	if res.DryRun {
		fmt.Printf("dry run: %d versions would be removed, %d kept\n", len(res.Plan.Remove), len(res.Plan.Keep))
		return
	}
	n := 0
	for _, x := range res.Nodes {
		n += len(x.Removed)
	}
	fmt.Printf("%d versions removed (%d copies from nodes, %d from the control plane), %d kept\n", len(res.Plan.Remove), n, len(res.Store), len(res.Plan.Keep))
}

// createSchedule creates the Temporal Schedule that runs op at the cron
// times spec: skip when the previous run still runs, catch up for a minute
// at most.
func createSchedule(cmd *cobra.Command, op, spec string, req func(deploy.Config) workflows.ScheduledRequest) error {
	ctx := cmd.Context()
	if _, err := jsonOutput(); err != nil {
		return err
	}
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	cp, err := connect(ctx, &cfg)
	if err != nil {
		return err
	}
	defer cp.Close()
	command := "dflow"
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " *?\"'") {
			a = strconv.Quote(a)
		}
		command += " " + a
	}
	row, err := cp.CreateSchedule(ctx, op, spec, command, req(cp.Config()))
	if err != nil {
		return err
	}
	id := row.ID
	next := "-"
	if !row.Next.IsZero() {
		next = row.Next.Local().Format("2006-01-02 15:04:05")
	}
	fmt.Printf("schedule %s: %s at %q; next run %s (fires only while the control plane runs)\n", id, op, spec, next)
	return nil
}

func newSchedulesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedules",
		Short: "List the cluster's Temporal Schedules (gc, chaos-monkey); delete one",
		Long: `List the Schedules gc --schedule and chaos-monkey --schedule created for this cluster: id,
cron spec, next run, and the command that made it. Schedules fire only while the control
plane runs; a run missed by more than a minute is skipped, and a run that would overlap
the previous one is skipped.`,
		Example: `  dflow schedules
  dflow schedules -o json
  dflow schedules delete dflow-myapp-schedule-gc`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := jsonOutput()
			if err != nil {
				return err
			}
			cp, err := connectCmd(cmd)
			if err != nil {
				return err
			}
			defer cp.Close()
			rows, err := cp.Schedules(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(os.Stdout).Encode(rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(os.Stderr, "no schedules; `dflow gc --count 5 --schedule @daily` makes one")
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSPEC\tNEXT RUN\tACTION")
			for _, r := range rows {
				next := "-"
				if !r.Next.IsZero() {
					next = r.Next.Local().Format("2006-01-02 15:04:05")
				}
				if r.Paused {
					next += " (paused)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.ID, r.Spec, next, r.Action)
			}
			return tw.Flush()
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "delete ID",
		Short:   "Delete a schedule",
		Example: `  dflow schedules delete dflow-myapp-schedule-chaos-monkey`,
		Args:    exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cp, id, err := scheduleArg(cmd, "delete", args[0])
			if err != nil {
				return err
			}
			defer cp.Close()
			if err := cp.DeleteSchedule(cmd.Context(), id); err != nil {
				return fmt.Errorf("schedules delete: %w", err)
			}
			fmt.Fprintf(os.Stderr, "deleted schedule %s\n", id)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "trigger ID",
		Short: "Run a schedule's action now and follow it",
		Long: `Run a schedule's action now (as if its time had come; the schedule itself is unchanged)
and follow the run to its end: a way to check a schedule without waiting for it.`,
		Example: `  dflow schedules trigger gc`,
		Args:    exactArgs(1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cp, id, err := scheduleArg(cmd, "trigger", args[0])
			if err != nil {
				return err
			}
			defer cp.Close()
			ctx := cmd.Context()
			wid, runID, err := cp.TriggerSchedule(ctx, id)
			if err != nil {
				return fmt.Errorf("schedules trigger: %w", err)
			}
			var res workflows.ScheduledResult
			if err := cp.Follow(ctx, "schedule "+id, wid, runID, &res, os.Stderr); err != nil {
				return err
			}
			return printJSON(true, res, nil)
		},
	})
	return cmd
}

// scheduleArg resolves a schedule argument ("gc", "chaos-monkey" or a full
// ID of this cluster) and connects.
func scheduleArg(cmd *cobra.Command, verb, arg string) (*controlplane.Client, string, error) {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return nil, "", err
	}
	id := arg
	for _, op := range []string{workflows.ScheduledGC, workflows.ScheduledChaos} {
		if id == op {
			id = controlplane.ScheduleID(cfg, op)
		}
	}
	if !strings.HasPrefix(id, workflows.LockID(cfg)+"-schedule-") {
		return nil, "", fmt.Errorf("schedules %s: %q is not a schedule of cluster %s (see `dflow schedules`)", verb, arg, cfg.Name)
	}
	cp, err := connect(cmd.Context(), &cfg)
	if err != nil {
		return nil, "", err
	}
	return cp, id, nil
}
