package main

import (
	"context"
	"encoding/json"
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
	for _, u := range []struct{ name, short string }{
		{workflows.UpdatePause, "Pause the running deploy before its next batch"},
		{workflows.UpdateResume, "Resume a paused deploy"},
		{workflows.UpdateAbort, "Abort the running deploy before its next batch (with --auto-rollout, or when a step is stuck, switched nodes go back)"},
	} {
		cmd.AddCommand(deployUpdateCmd(u.name, u.short))
	}
	cmd.AddCommand(newDeployRetryCmd(), newDeploySkipNodeCmd())
	return cmd
}

// newDeployRetryCmd is `dflow deploy retry`.
func newDeployRetryCmd() *cobra.Command {
	return &cobra.Command{
		Use:   workflows.UpdateRetry,
		Short: "Run the running deploy's stuck node step again",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, func(ctx context.Context, cp *controlplane.Client) error {
				id, err := cp.Update(ctx, workflows.UpdateRetry, controlplane.WhoAmI())
				if err != nil {
					return fmt.Errorf("deploy retry: %v", err)
				}
				fmt.Printf("%s: retrying the stuck step (dflow follow shows how it goes)\n", id)
				return nil
			})
		},
	}
}

// newDeploySkipNodeCmd is `dflow deploy skip-node INDEX`.
func newDeploySkipNodeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   workflows.UpdateSkipNode + " INDEX",
		Short: "Leave the stuck node INDEX out of the running deploy and go on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			i, err := strconv.Atoi(args[0])
			if err != nil || i < 0 {
				return fmt.Errorf("deploy skip-node: %q is not a node index (dflow list shows them)", args[0])
			}
			return withClient(cmd, func(ctx context.Context, cp *controlplane.Client) error {
				id, err := cp.Update(ctx, workflows.UpdateSkipNode, workflows.SkipNode{Node: &i, Who: controlplane.WhoAmI()})
				if err != nil {
					return fmt.Errorf("deploy skip-node %d: %v", i, err)
				}
				fmt.Printf("%s: node %d is left out of this rollout; `dflow repair` brings it up once the deploy ends\n", id, i)
				return nil
			})
		},
	}
}

// deployUpdateCmd is `dflow deploy pause|resume|abort`: a Temporal Update of
// the running deploy, refused by its validator when it makes no sense.
func deployUpdateCmd(name, short string) *cobra.Command {
	return &cobra.Command{
		Use:   name,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(cmd, func(ctx context.Context, cp *controlplane.Client) error {
				id, err := cp.Update(ctx, name, controlplane.WhoAmI())
				if err != nil {
					return fmt.Errorf("deploy %s: %v", name, err)
				}
				fmt.Printf("%s: %s\n", id, name+"d")
				return nil
			})
		},
	}
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

// rolloutCmd is deploy, rollback, restart and start: one workflow, four kinds.
func rolloutCmd(kind, use, short string) *cobra.Command {
	cmd := &cobra.Command{
		Use: use, Short: short,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := deployRequest(cmd, kind)
			if err != nil {
				return err
			}
			if w, _ := cmd.Flags().GetBool("watch"); w {
				return watchAndDeploy(cmd, req)
			}
			err = precheck(cmd, func(ctx context.Context, cfg deploy.Config) error {
				if err := controlplane.CheckCommit(ctx, cfg, req.CommitHash); err != nil || kind != deploy.ReleaseRollback {
					return err
				}
				warning, err := controlplane.CheckRollback(ctx, cfg, req.Version)
				if warning != "" {
					fmt.Fprintln(os.Stderr, "dflow: warning:", warning)
				}
				return err
			})
			if err != nil {
				return err
			}
			return runOp(cmd, use, workflows.Deploy, deployInput(req), printRelease)
		},
	}
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

// runOp runs a mutating command's workflow under the cluster lock (with
// --wait, behind the running operation) and follows it to its end: it
// loads the configuration, makes the workflow's input from it with req,
// and prints the result: as JSON with -o json, else with text.
func runOp[R any](cmd *cobra.Command, command string, wf any, req func(cfg deploy.Config) any, text func(R) error) error {
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
		return text(res)
	})
}

// deployInput is the Deploy workflow's input for the configuration.
func deployInput(req workflows.DeployRequest) func(deploy.Config) any {
	return func(cfg deploy.Config) any {
		req.Config, req.SearchAttributes = cfg, cfg.Temporal.Address == ""
		return req
	}
}

// printRelease says which release serves where, and what the agents noticed
// about the new instances.
func printRelease(res workflows.DeployResult) error {
	serving := 0
	for _, o := range res.Nodes {
		if o.Serving != "" && o.Version == res.Release.Version {
			serving++
		}
	}
	fmt.Printf("release %d: %s of version %s (digest %s) serves on %d of %d nodes\n",
		res.Release.ID, res.Release.Kind, deploy.ShortVersion(res.Release.Version), deploy.ShortDigest(res.Release.Digest), serving, len(res.Nodes))
	for _, o := range res.Nodes {
		if o.LeftOut != "" {
			fmt.Printf("node %d was left out: %s\n", o.Index, o.LeftOut)
		}
		if o.Warning != "" {
			fmt.Fprintf(os.Stderr, "warning: %s\n", o.Warning)
		}
	}
	return nil
}

func newStopCmd() *cobra.Command {
	var req workflows.StopRequest
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop the serving version on every node (--all: every version)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOp(cmd, "stop", workflows.Stop, func(cfg deploy.Config) any { req.Config = cfg; return req }, func(res []workflows.StoppedOn) error {
				n := 0
				for _, s := range res {
					n += len(s.Stopped)
				}
				fmt.Printf("%d processes stopped on %d nodes\n", n, len(res))
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&req.All, "all", false, "stop every version on the nodes, not only the serving one")
	cmd.Flags().BoolVar(&req.Now, "now", false, "do not drain requests in flight: SIGTERM at once")
	addWait(cmd)
	return cmd
}

func newBuildCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build and test the target; print its version, digest and sizes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			commit, _ := cmd.Flags().GetString("commit-hash")
			err := precheck(cmd, func(ctx context.Context, cfg deploy.Config) error { return controlplane.CheckCommit(ctx, cfg, commit) })
			if err != nil {
				return err
			}
			return runOp(cmd, "build", workflows.Build, func(cfg deploy.Config) any {
				return workflows.BuildRequest{Config: cfg, BuildEnv: controlplane.BuildEnv(), CommitHash: commit}
			}, func(t deploy.Target) error { return report.Build(os.Stdout, t) })
		},
	}
	cmd.Flags().String("commit-hash", "", "build this commit `HASH` (in a clean worktree, .dflow/worktree) instead of the working tree")
	addWait(cmd)
	return cmd
}

func newCopyCmd() *cobra.Command {
	var req workflows.CopyRequest
	cmd := &cobra.Command{
		Use:   "copy",
		Short: "Make every node hold a bundle (sha256-verified on arrival)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			err := precheck(cmd, func(ctx context.Context, cfg deploy.Config) error {
				return controlplane.CheckCopy(ctx, cfg, req.Version, req.Latest)
			})
			if err != nil {
				return err
			}
			return runOp(cmd, "copy", workflows.Copy, func(cfg deploy.Config) any { req.Config = cfg; return req }, func(res workflows.CopyResult) error {
				var sent int64
				for _, n := range res.Nodes {
					sent += n.Sent
				}
				fmt.Printf("version %s (digest %s) is on %d nodes; %s sent\n", deploy.ShortVersion(res.Target.Version), deploy.ShortDigest(res.Target.Digest), len(res.Nodes), deploy.HumanBytes(sent))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&req.Version, "version", "", "copy the build of this commit `HASH` (at least 7 characters)")
	cmd.Flags().BoolVar(&req.Latest, "latest", false, "copy the newest build")
	cmd.MarkFlagsMutuallyExclusive("latest", "version")
	cmd.Flags().BoolVar(&req.Force, "through-cache", false, "send and verify again even where the node has it")
	addWait(cmd)
	return cmd
}

func newReleasesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "releases",
		Short: "List the release history: version, kind, who, when, outcome",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var st deploy.State
			ask := func(ctx context.Context, cfg deploy.Config) ([]deploy.Release, error) {
				inv, err := controlplane.ReadInventory(ctx, cfg)
				st = inv.State
				return st.Releases, err
			}
			return query(cmd, ask, none, "no releases yet; `dflow deploy` makes the first", func(w io.Writer, _ []deploy.Release) error {
				return report.Releases(w, st)
			})
		},
	}
	return cmd
}
