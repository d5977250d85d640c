package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/workflows"
	"github.com/fsnotify/fsnotify"
	"github.com/spf13/cobra"
)

// watchSkip are directories whose changes never trigger a deploy: build
// outputs, dflow's state, version control.
var watchSkip = map[string]bool{".git": true, ".dflow": true, "dist-newstyle": true, ".stack-work": true, "node_modules": true}

// watchAndDeploy deploys now and again whenever the sources change (after
// they have been quiet for --debounce). Deploys run one at a time (each
// waits for the cluster lock); a failed build or rollout is reported and the
// watch goes on. Ctrl-C ends it.
func watchAndDeploy(cmd *cobra.Command, req workflows.DeployRequest) error {
	ctx := cmd.Context()
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	debounce, _ := cmd.Flags().GetDuration("debounce")
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("deploy --watch: %w", err)
	}
	defer w.Close()
	root := filepath.Dir(cfg.PackagePath())
	if cfg.Package == "" {
		root = cfg.Dir
	}
	n, err := watchTree(w, root)
	if err != nil {
		return fmt.Errorf("deploy --watch: %w", err)
	}
	fmt.Fprintf(os.Stderr, "deploy --watch: watching %s (%d directories); Ctrl-C stops\n", root, n)
	deployOnce := func(why string) {
		fmt.Fprintf(os.Stderr, "deploy --watch: %s: deploying\n", why)
		var res workflows.DeployResult
		_, err := operation(cmd, "deploy", true, workflows.Deploy, func(cfg deploy.Config) any {
			req.Config, req.SearchAttributes = cfg, cfg.Temporal.Address == ""
			return req
		}, &res)
		if err != nil {
			fmt.Fprintf(os.Stderr, "deploy --watch: %v\ndeploy --watch: still watching\n", err)
			return
		}
		fmt.Printf("release %d: version %s serves on %d of %d nodes\n", res.Release.ID, deploy.ShortVersion(res.Release.Version), countServing(res), len(res.Nodes))
		printWarnings(res)
	}
	deployOnce("start")
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	changed := ""
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(os.Stderr, "deploy --watch: stopped")
			return nil
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			fmt.Fprintf(os.Stderr, "deploy --watch: %v\n", err)
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if skipped(root, ev.Name) || ev.Op == fsnotify.Chmod {
				continue
			}
			if ev.Op&fsnotify.Create != 0 {
				if st, err := os.Stat(ev.Name); err == nil && st.IsDir() {
					_, _ = watchTree(w, ev.Name)
				}
			}
			changed = ev.Name
			timer.Reset(debounce)
		case <-timer.C:
			rel, _ := filepath.Rel(root, changed)
			deployOnce(rel + " changed")
		}
	}
}

// watchTree adds dir and every directory below it but the skipped ones.
func watchTree(w *fsnotify.Watcher, dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if path != dir && watchSkip[d.Name()] {
			return filepath.SkipDir
		}
		n++
		return w.Add(path)
	})
	return n, err
}

// skipped tells whether a change at path is in a skipped directory or is
// an editor's temporary file.
func skipped(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return true
	}
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		if watchSkip[part] {
			return true
		}
	}
	base := filepath.Base(path)
	return strings.HasSuffix(base, "~") || strings.HasPrefix(base, ".#") || strings.HasSuffix(base, ".swp") || strings.HasSuffix(base, ".swx")
}
