package srcwatch

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// skip are directories whose changes never count: build outputs, dflow's
// state, version control.
var skip = map[string]bool{".git": true, ".dflow": true, "dist-newstyle": true, ".stack-work": true, "node_modules": true}

// Watcher watches one source tree.
type Watcher struct {
	root string
	w    *fsnotify.Watcher
	dirs int
}

// New watches root and every directory below it but the skipped ones.
func New(root string) (*Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	sw := &Watcher{root: root, w: w}
	n, err := sw.add(root)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	sw.dirs = n
	return sw, nil
}

// Dirs is how many directories are watched.
func (sw *Watcher) Dirs() int { return sw.dirs }

// Close stops watching.
func (sw *Watcher) Close() error { return sw.w.Close() }

// Run calls changed with the path (relative to the root) of the last
// change once the tree has been quiet for debounce, again after each later
// burst of changes, until ctx ends. changed runs on Run's goroutine: while
// it runs, new changes are collected and reported after it. Watch errors
// go to problem and the watch goes on.
func (sw *Watcher) Run(ctx context.Context, debounce time.Duration, changed func(rel string), problem func(error)) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case err, ok := <-sw.w.Errors:
			if !ok {
				return
			}
			problem(err)
		case ev, ok := <-sw.w.Events:
			if !ok {
				return
			}
			if Skipped(sw.root, ev.Name) || ev.Op == fsnotify.Chmod {
				continue
			}
			if ev.Op&fsnotify.Create != 0 {
				if st, err := os.Stat(ev.Name); err == nil && st.IsDir() {
					_, _ = sw.add(ev.Name)
				}
			}
			last = ev.Name
			timer.Reset(debounce)
		case <-timer.C:
			rel, _ := filepath.Rel(sw.root, last)
			changed(rel)
		}
	}
}

// add watches dir and every directory below it but the skipped ones.
func (sw *Watcher) add(dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if path != dir && skip[d.Name()] {
			return filepath.SkipDir
		}
		n++
		return sw.w.Add(path)
	})
	return n, err
}

// Skipped tells whether a change at path is in a skipped directory below
// root or is an editor's temporary file.
func Skipped(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return true
	}
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		if skip[part] {
			return true
		}
	}
	base := filepath.Base(path)
	return strings.HasSuffix(base, "~") || strings.HasPrefix(base, ".#") || strings.HasSuffix(base, ".swp") || strings.HasSuffix(base, ".swx")
}
