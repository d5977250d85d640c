package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/distributive-flow/dflow/srcwatch"
	"github.com/distributive-flow/dflow/workflows"
	"github.com/spf13/cobra"
)

// watchAndDeploy deploys now and again whenever the sources change (after
// they have been quiet for --debounce). Deploys run one at a time (each
// waits for the cluster lock); a failed build or rollout is reported and the
// watch goes on. Ctrl-C ends it.
func watchAndDeploy(cmd *cobra.Command, req workflows.DeployRequest) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	debounce, _ := cmd.Flags().GetDuration("debounce")
	root := filepath.Dir(cfg.PackagePath())
	if cfg.Package == "" {
		root = cfg.Dir
	}
	w, err := srcwatch.New(root)
	if err != nil {
		return fmt.Errorf("deploy --watch: %w", err)
	}
	defer w.Close()
	fmt.Fprintf(os.Stderr, "deploy --watch: watching %s (%d directories); Ctrl-C stops\n", root, w.Dirs())
	_ = cmd.Flags().Set("wait", "true") // each deploy waits for the one before
	deployOnce := func(why string) {
		fmt.Fprintf(os.Stderr, "deploy --watch: %s: deploying\n", why)
		if err := runOp(cmd, "deploy", workflows.Deploy, deployInput(req), printRelease); err != nil {
			fmt.Fprintf(os.Stderr, "deploy --watch: %v\ndeploy --watch: still watching\n", err)
		}
	}
	deployOnce("start")
	w.Run(cmd.Context(), debounce, func(rel string) { deployOnce(rel + " changed") },
		func(err error) { fmt.Fprintf(os.Stderr, "deploy --watch: %v\n", err) })
	fmt.Fprintln(os.Stderr, "deploy --watch: stopped")
	return nil
}
