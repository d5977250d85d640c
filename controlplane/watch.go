package controlplane

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/distributive-flow/dflow/deploy"
	"github.com/distributive-flow/dflow/srcwatch"
)

// WatchSources runs deployNow now and again whenever the package's sources
// change (once they have been quiet for debounce), saying so on w; a failed
// deploy is reported and the watch goes on. It returns when ctx ends
// (Ctrl-C).
func WatchSources(ctx context.Context, cfg deploy.Config, debounce time.Duration, w io.Writer, deployNow func() error) error {
	root := filepath.Dir(cfg.PackagePath())
	if cfg.Package == "" {
		root = cfg.Dir
	}
	sw, err := srcwatch.New(root)
	if err != nil {
		return fmt.Errorf("deploy --watch: %w", err)
	}
	defer sw.Close()
	fmt.Fprintf(w, "deploy --watch: watching %s (%d directories); Ctrl-C stops\n", root, sw.Dirs())
	once := func(why string) {
		fmt.Fprintf(w, "deploy --watch: %s: deploying\n", why)
		if err := deployNow(); err != nil {
			fmt.Fprintf(w, "deploy --watch: %v\ndeploy --watch: still watching\n", err)
		}
	}
	once("start")
	sw.Run(ctx, debounce, func(rel string) { once(rel + " changed") },
		func(err error) { fmt.Fprintf(w, "deploy --watch: %v\n", err) })
	fmt.Fprintln(w, "deploy --watch: stopped")
	return nil
}
