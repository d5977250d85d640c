package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/distributive-flow/dflow/activities"
	"github.com/distributive-flow/dflow/controlplane"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/worker"
	"github.com/distributive-flow/dflow/workflows"
	"github.com/spf13/cobra"
)

func newVerifyCmd() *cobra.Command {
	var index int
	var watch bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify every node: health and threshold; healthy iff health >= threshold",
		Long: `Run verify on every node (--index: one) and print (health, threshold) per node; a node is
healthy iff health >= threshold. verify.program in dflow.yaml names a program (a Haskell
source is compiled once with GHC and cached by its hash; anything else runs as is) that
gets DFLOW_NODE_INDEX, DFLOW_NODE_ADDRESS, DFLOW_APP_URL and DFLOW_VERSION and prints
"health threshold". Without one, the built-in probe sends verify.probes requests to the
node's public port. Every verdict is recorded in the store (see ` + "`dflow health`" + `).
Exits 1 when a node is unhealthy. --watch keeps verifying every --interval as a durable
workflow (Ctrl-C stops following; ` + "`dflow verify --stop`" + ` ends it).`,
		Example: `  dflow verify
  dflow verify --index 2 -o json
  dflow verify --watch --interval 30s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, cfg, err := outputAndConfig(cmd)
			if err != nil {
				return err
			}
			if stop, _ := cmd.Flags().GetBool("stop"); stop {
				return stopVerifyWatch(cmd.Context(), cfg)
			}
			if watch {
				if interval < time.Second {
					return fmt.Errorf("verify: --interval %s: want at least 1s", interval)
				}
				return verifyWatch(cmd.Context(), cfg, index, interval)
			}
			vs, err := verifyNow(cmd.Context(), cfg, index)
			if err != nil {
				return err
			}
			if asJSON {
				if err := json.NewEncoder(os.Stdout).Encode(vs); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "INDEX\tHEALTH\tTHRESHOLD\tRESULT\tSOURCE\tDETAIL")
				for _, v := range vs {
					res := "healthy"
					if !v.Healthy() {
						res = "UNHEALTHY"
					}
					fmt.Fprintf(tw, "%d\t%.1f\t%.1f\t%s\t%s\t%s\n", v.Index, v.Health, v.Threshold, res, v.Source, dash(v.Detail))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			var bad []string
			for _, v := range vs {
				if !v.Healthy() {
					bad = append(bad, fmt.Sprint(v.Index))
				}
			}
			if len(bad) > 0 {
				return &exitError{code: 1, err: fmt.Errorf("verify: nodes %s are unhealthy", strings.Join(bad, ", "))}
			}
			return nil
		},
	}
	addFlags(cmd, "store")
	cmd.Flags().IntVar(&index, "index", -1, "verify only the node at `INDEX`")
	cmd.Flags().BoolVar(&watch, "watch", false, "keep verifying, as a durable workflow")
	cmd.Flags().DurationVar(&interval, "interval", 10*time.Second, "with --watch: time between rounds")
	cmd.Flags().Bool("stop", false, "stop a running verify --watch")
	return cmd
}

// verifyNow runs verify on the nodes from the CLI itself (read only on the
// nodes; it records the verdicts).
func verifyNow(ctx context.Context, cfg deploy.Config, index int) ([]deploy.Verdict, error) {
	inv, err := inventory(ctx, cfg)
	if err != nil {
		return nil, err
	}
	nodes := inv.State.Nodes
	if index >= 0 {
		n, ok := inv.State.Node(index)
		if !ok {
			return nil, fmt.Errorf("verify: no node at index %d (see `dflow list`)", index)
		}
		nodes = []deploy.Node{n}
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("verify: the cluster has no nodes: run dflow set 3 first")
	}
	b, err := worker.Open(ctx, cfg, worker.Env{})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	out := make([]deploy.Verdict, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = activities.Verify(ctx, cfg, b, n)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("verify: %v", controlplane.Explain(err))
		}
	}
	return out, nil
}

func verifyWatchID(cfg deploy.Config) string { return "dflow-" + cfg.Name + "-verify" }

func verifyWatch(ctx context.Context, cfg deploy.Config, index int, interval time.Duration) error {
	cp, err := connect(ctx, &cfg)
	if err != nil {
		return err
	}
	defer cp.Close()
	// A second --watch follows the running one.
	run, err := cp.StartOrJoin(ctx, verifyWatchID(cfg), workflows.VerifyWatch, workflows.VerifyRequest{Config: cfg, Index: index, Interval: interval})
	if err != nil {
		return fmt.Errorf("verify --watch: %w", err)
	}
	return cp.Follow(ctx, "verify --watch", run.GetID(), run.GetRunID(), nil, os.Stderr)
}

func stopVerifyWatch(ctx context.Context, cfg deploy.Config) error {
	cp, err := connect(ctx, &cfg)
	if err != nil {
		return err
	}
	defer cp.Close()
	if err := cp.Stop(ctx, verifyWatchID(cfg)); err != nil {
		return fmt.Errorf("verify --stop: no verify --watch runs for cluster %s (%v)", cfg.Name, err)
	}
	fmt.Fprintf(os.Stderr, "verify --watch of cluster %s stopped\n", cfg.Name)
	return nil
}

func newHealthCmd() *cobra.Command {
	var index, window int
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Statistics of verify's health results: current, min, mean, max, trend per node",
		Long: `Summarize the health verify recorded for every node (--index: one) over the newest
--window verdicts: the current value, min, mean, max, and the trend (the mean of the newer
half of the window minus the older half). Run ` + "`dflow verify`" + ` (or verify --watch, or a
deploy with --auto-rollout) to record verdicts.`,
		Example: `  dflow health
  dflow health --index 1 --window 50 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := jsonOutput()
			if err != nil {
				return err
			}
			if window < 1 {
				return fmt.Errorf("health: --window %d: want at least 1", window)
			}
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			inv, err := inventory(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			stats := deploy.Stats(inv.State.Health, window)
			if index >= 0 {
				var one []deploy.HealthStats
				for _, s := range stats {
					if s.Index == index {
						one = append(one, s)
					}
				}
				stats = one
			}
			if asJSON {
				if stats == nil {
					stats = []deploy.HealthStats{}
				}
				return json.NewEncoder(os.Stdout).Encode(stats)
			}
			if len(stats) == 0 {
				fmt.Fprintln(os.Stderr, "no health recorded yet; `dflow verify` records some")
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "INDEX\tCURRENT\tMIN\tMEAN\tMAX\tTHRESHOLD\tTREND\tSAMPLES\tLAST")
			for _, s := range stats {
				trend := "steady"
				switch {
				case s.Trend > 0.5:
					trend = fmt.Sprintf("rising %+.1f", s.Trend)
				case s.Trend < -0.5:
					trend = fmt.Sprintf("falling %+.1f", s.Trend)
				}
				fmt.Fprintf(tw, "%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t%d\t%s ago\n", s.Index, s.Current, s.Min, s.Mean, s.Max, s.Threshold, trend, s.Samples, time.Since(s.Last).Round(time.Second))
			}
			return tw.Flush()
		},
	}
	addFlags(cmd, "store")
	cmd.Flags().IntVar(&index, "index", -1, "only the node at `INDEX`")
	cmd.Flags().IntVar(&window, "window", 20, "how many of the newest verdicts per node to summarize")
	return cmd
}
