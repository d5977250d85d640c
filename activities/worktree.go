package activities

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/distributive-flow/dflow/deploy"
)

var commitPattern = regexp.MustCompile(`^[0-9a-fA-F]{4,64}$|^[A-Za-z0-9._/-]{1,200}$`)

// checkout makes the clean worktree .dflow/worktree hold commit (creating
// it on first use; later builds reuse it, so its build outputs stay warm)
// and returns the package path inside it.
func checkout(ctx context.Context, cfg deploy.Config, commit string) (string, error) {
	top, full, err := ResolveCommit(ctx, cfg, commit)
	if err != nil {
		return "", err
	}
	wt := filepath.Join(cfg.StateDir(), "worktree")
	if _, err := os.Stat(filepath.Join(wt, ".git")); err != nil {
		_, _ = git(ctx, top, "worktree", "prune")
		if _, err := git(ctx, top, "worktree", "add", "--detach", "--force", wt, full); err != nil {
			return "", fmt.Errorf("--commit-hash %s: make a worktree at %s: %w", commit, wt, err)
		}
	} else if _, err := git(ctx, wt, "checkout", "--detach", "--force", full); err != nil {
		return "", fmt.Errorf("--commit-hash %s: check it out in %s: %w", commit, wt, err)
	}
	// Build outputs stay (warm rebuilds); anything else untracked goes.
	if _, err := git(ctx, wt, "clean", "-fdq", "-e", "dist-newstyle", "-e", ".stack-work"); err != nil {
		return "", fmt.Errorf("--commit-hash %s: clean %s: %w", commit, wt, err)
	}
	rel, err := filepath.Rel(top, cfg.PackagePath())
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("--commit-hash: the package %s is outside the repository %s", cfg.PackagePath(), top)
	}
	return filepath.Join(wt, rel), nil
}

// ResolveCommit finds commit in the git repository holding cfg's project:
// the repository's top directory and the commit's full hash. Its errors
// say what is wrong with the --commit-hash given.
func ResolveCommit(ctx context.Context, cfg deploy.Config, commit string) (top, full string, err error) {
	if !commitPattern.MatchString(commit) || strings.HasPrefix(commit, "-") {
		return "", "", fmt.Errorf("--commit-hash %q is not a commit", commit)
	}
	top, err = git(ctx, cfg.Dir, "rev-parse", "--show-toplevel")
	if err != nil {
		return "", "", fmt.Errorf("--commit-hash: %s is not in a git repository: %w", cfg.Dir, err)
	}
	full, err = git(ctx, cfg.Dir, "rev-parse", "--verify", "--quiet", commit+"^{commit}")
	if err != nil {
		return "", "", fmt.Errorf("--commit-hash %s: no such commit in %s", commit, top)
	}
	return top, full, nil
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}
