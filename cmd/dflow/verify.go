package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/distributive-flow/dflow/controlplane"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/report"
	"github.com/distributive-flow/dflow/workflows"
	"github.com/spf13/cobra"
)

func newVerifyCmd() *cobra.Command {
	var index int
	var watch, stop bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify every node: health and threshold; healthy iff health >= threshold",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if stop {
				return stopLoop(cmd, workflows.VerifyWatchID, "verify --watch")
			}
			if watch {
				if interval < time.Second {
					return badInput("verify: --interval %s: want at least 1s", interval)
				}
				// A second --watch follows the running one.
				return withClient(cmd, func(ctx context.Context, cp *controlplane.Client) error {
					req := workflows.VerifyRequest{Config: cp.Config(), Index: index, Interval: interval}
					return cp.JoinLoop(ctx, workflows.VerifyWatchID(cp.Config()), "verify --watch", workflows.VerifyWatch, req)
				})
			}
			ask := func(ctx context.Context, cfg deploy.Config) ([]deploy.Verdict, error) {
				return controlplane.VerifyNow(ctx, cfg, index)
			}
			vs, err := show(cmd, ask, nil, "", report.Verdicts)
			if bad := controlplane.Unhealthy(vs); err == nil && len(bad) > 0 {
				return exit(1, fmt.Errorf("verify: nodes %s are unhealthy", report.JoinInts(bad)))
			}
			return err
		},
	}
	cmd.Flags().IntVar(&index, "index", -1, "verify only the node at `INDEX`")
	cmd.Flags().BoolVar(&watch, "watch", false, "keep verifying, as a durable workflow")
	cmd.Flags().DurationVar(&interval, "interval", 10*time.Second, "with --watch: time between rounds")
	cmd.Flags().BoolVar(&stop, "stop", false, "stop a running verify --watch")
	cmd.MarkFlagsMutuallyExclusive("watch", "stop")
	return cmd
}

func newHealthCmd() *cobra.Command {
	var index, window int
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Statistics of verify's health results: current, min, mean, max, trend per node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if window < 1 {
				return badInput("health: --window %d: want at least 1", window)
			}
			ask := func(ctx context.Context, cfg deploy.Config) ([]deploy.HealthStats, error) {
				return controlplane.HealthStats(ctx, cfg, index, window)
			}
			_, err := show(cmd, ask, none, "no health recorded yet; `dflow verify` records some", func(w io.Writer, stats []deploy.HealthStats) error {
				return report.Health(w, stats, time.Now())
			})
			return err
		},
	}
	cmd.Flags().IntVar(&index, "index", -1, "only the node at `INDEX`")
	cmd.Flags().IntVar(&window, "window", 20, "how many of the newest verdicts per node to summarize")
	return cmd
}
