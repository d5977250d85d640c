package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/distributive-flow/dflow/controlplane"
	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/report"
	"github.com/distributive-flow/dflow/workflows"
	"github.com/spf13/cobra"
)

func newDeployCmd() *cobra.Command {
	cmd := rolloutCmd(deploy.ReleaseDeploy, "deploy", "Build, test and roll out the working tree to every node with zero downtime")
	cmd.Flags().String("commit-hash", "", "build this commit `HASH` (in a clean worktree, .dflow/worktree) instead of the working tree")
	cmd.Flags().Bool("watch", false, "watch the sources and deploy on every change (debounced; a failed build is reported and the watch goes on)")
	cmd.Flags().Duration("debounce", time.Second, "with --watch: how long the sources must be quiet before a deploy")
	for _, u := range []struct{ name, short, done string }{
		{workflows.UpdatePause, "Pause the running deploy before its next batch", "paused"},
		{workflows.UpdateResume, "Resume a paused deploy", "resumed"},
		{workflows.UpdateAbort, "Abort the running deploy before its next batch (with --auto-rollout, or when a step is stuck, switched nodes go back)", "aborted"},
		{workflows.UpdateRetry, "Run the running deploy's stuck node step again", "retrying the stuck step (dflow follow shows how it goes)"},
	} {
		cmd.AddCommand(updateCmd(u.name, u.short, cobra.NoArgs, func([]string) (any, string, string, error) {
			return controlplane.WhoAmI(), u.name, u.done, nil
		}))
	}
	cmd.AddCommand(updateCmd(workflows.UpdateSkipNode+" INDEX", "Leave the stuck node INDEX out of the running deploy and go on", cobra.ExactArgs(1), func(args []string) (any, string, string, error) {
		i, err := strconv.Atoi(args[0])
		if err != nil || i < 0 {
			return nil, "", "", fmt.Errorf("deploy skip-node: %q is not a node index (dflow list shows them)", args[0])
		}
		return workflows.SkipNode{Node: &i, Who: controlplane.WhoAmI()}, fmt.Sprintf("skip-node %d", i),
			fmt.Sprintf("node %d is left out of this rollout; `dflow repair` brings it up once the deploy ends", i), nil
	}))
	return cmd
}

// updateCmd is `dflow deploy pause|resume|abort|retry|skip-node`: a
// Temporal Update of the running deploy, refused by its validator when it
// makes no sense. req makes the Update's argument from the command's
// arguments, the label its error names and what it says when done.
func updateCmd(use, short string, args cobra.PositionalArgs, req func([]string) (arg any, label, done string, err error)) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: args, RunE: func(cmd *cobra.Command, args []string) error {
		arg, label, done, err := req(args)
		if err != nil {
			return err
		}
		return withClient(cmd, func(ctx context.Context, cp *controlplane.Client) error {
			id, err := cp.Update(ctx, cmd.Name(), arg)
			if err != nil {
				return fmt.Errorf("deploy %s: %v", label, err)
			}
			fmt.Printf("%s: %s\n", id, done)
			return nil
		})
	}}
}

func newRollbackCmd() *cobra.Command {
	cmd := rolloutCmd(deploy.ReleaseRollback, "rollback", "Roll back to the previous release (again: further back)")
	cmd.Flags().String("version", "", "roll back to the release of this commit `HASH` (at least 7 characters)")
	return cmd
}

func newRestartCmd() *cobra.Command {
	return rolloutCmd(deploy.ReleaseRestart, "restart", "Restart the current release on every node with zero downtime")
}

func newStartCmd() *cobra.Command {
	return rolloutCmd(deploy.ReleaseStart, "start", "Start the current release on every node (after dflow stop, or on new nodes)")
}

// rolloutCmd is deploy, rollback, restart and start: one workflow, four
// kinds. deploy --watch deploys again on every change to the sources,
// each deploy waiting for the one before.
func rolloutCmd(kind, use, short string) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, args []string) error {
		req, err := deployRequest(cmd, kind)
		if err != nil {
			return err
		}
		deployNow := func() error {
			return runOp(cmd, use, workflows.Deploy, func(cfg deploy.Config) any {
				req.Config, req.SearchAttributes = cfg, cfg.Temporal.Address == ""
				return req
			}, func(w io.Writer, res workflows.DeployResult) error { return report.Release(w, os.Stderr, res) })
		}
		return withConfig(cmd, func(ctx context.Context, cfg deploy.Config) error {
			if watch, _ := cmd.Flags().GetBool("watch"); watch {
				debounce, _ := cmd.Flags().GetDuration("debounce")
				_ = cmd.Flags().Set("wait", "true")
				return controlplane.WatchSources(ctx, cfg, debounce, os.Stderr, deployNow)
			}
			warning, err := controlplane.CheckDeploy(ctx, cfg, req)
			if warning != "" {
				fmt.Fprintln(os.Stderr, "dflow: warning:", warning)
			}
			if err != nil {
				return err
			}
			return deployNow()
		})
	}}
	addWait(cmd)
	cmd.Flags().Int("rollout", 100, "switch only ceil(`PERCENT`% of the nodes) (a canary); a later full deploy completes it")
	cmd.Flags().Duration("rolling-timed", 0, "spread the batches evenly over `DURATION` (durable timers: a restart neither shortens nor repeats it)")
	cmd.Flags().Float64("auto-rollout", 0, "measure health before and after each batch; if it drops by more than `TOLERANCE`, switch every node back and fail")
	return cmd
}

// deployRequest reads a rollout command's flags; bad values change nothing.
func deployRequest(cmd *cobra.Command, kind string) (workflows.DeployRequest, error) {
	req := workflows.DeployRequest{Kind: kind, Who: controlplane.WhoAmI()}
	fl := cmd.Flags()
	req.Version, _ = fl.GetString("version")
	req.CommitHash, _ = fl.GetString("commit-hash")
	req.RolloutPercent, _ = fl.GetInt("rollout")
	req.RollingTimed, _ = fl.GetDuration("rolling-timed")
	req.Tolerance, _ = fl.GetFloat64("auto-rollout")
	req.AutoRollout = fl.Changed("auto-rollout")
	switch {
	case req.RolloutPercent < 1 || req.RolloutPercent > 100:
		return req, badInput("%s: --rollout %d: want a percentage from 1 to 100", cmd.Name(), req.RolloutPercent)
	case req.RollingTimed < 0:
		return req, badInput("%s: --rolling-timed %s: want a positive duration such as 10m", cmd.Name(), req.RollingTimed)
	case req.AutoRollout && req.Tolerance < 0:
		return req, badInput("%s: --auto-rollout %g: the tolerance is a health drop, 0 or more", cmd.Name(), req.Tolerance)
	}
	if req.RolloutPercent == 100 {
		req.RolloutPercent = 0
	}
	if kind == deploy.ReleaseDeploy {
		req.BuildEnv = controlplane.BuildEnv()
	}
	return req, nil
}

func newStopCmd() *cobra.Command {
	var req workflows.StopRequest
	cmd := opCmd("stop", "Stop the serving version on every node (--all: every version)", nil,
		workflows.Stop, func(cfg deploy.Config) any { req.Config = cfg; return req }, report.Stopped)
	cmd.Flags().BoolVar(&req.All, "all", false, "stop every version on the nodes, not only the serving one")
	cmd.Flags().BoolVar(&req.Now, "now", false, "do not drain requests in flight: SIGTERM at once")
	return cmd
}

func newBuildCmd() *cobra.Command {
	var commit string
	cmd := opCmd("build", "Build and test the target; print its version, digest and sizes",
		func(ctx context.Context, cfg deploy.Config) error { return controlplane.CheckCommit(ctx, cfg, commit) },
		workflows.Build, func(cfg deploy.Config) any {
			return workflows.BuildRequest{Config: cfg, BuildEnv: controlplane.BuildEnv(), CommitHash: commit}
		}, report.Build)
	cmd.Flags().StringVar(&commit, "commit-hash", "", "build this commit `HASH` (in a clean worktree, .dflow/worktree) instead of the working tree")
	return cmd
}

func newCopyCmd() *cobra.Command {
	var req workflows.CopyRequest
	cmd := opCmd("copy", "Make every node hold a bundle (sha256-verified on arrival)",
		func(ctx context.Context, cfg deploy.Config) error {
			return controlplane.CheckCopy(ctx, cfg, req.Version, req.Latest)
		},
		workflows.Copy, func(cfg deploy.Config) any { req.Config = cfg; return req }, report.Copied)
	cmd.Flags().StringVar(&req.Version, "version", "", "copy the build of this commit `HASH` (at least 7 characters)")
	cmd.Flags().BoolVar(&req.Latest, "latest", false, "copy the newest build")
	cmd.MarkFlagsMutuallyExclusive("latest", "version")
	cmd.Flags().BoolVar(&req.Force, "through-cache", false, "send and verify again even where the node has it")
	return cmd
}

func newReleasesCmd() *cobra.Command {
	var st deploy.State
	ask := func(ctx context.Context, cfg deploy.Config) ([]deploy.Release, error) {
		inv, err := controlplane.ReadInventory(ctx, cfg)
		st = inv.State
		return st.Releases, err
	}
	return queryCmd("releases", "List the release history: version, kind, who, when, outcome", ask, none,
		"no releases yet; `dflow deploy` makes the first", func(w io.Writer, _ []deploy.Release) error { return report.Releases(w, st) })
}
